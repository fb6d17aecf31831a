import Foundation
import MediaQueueCore

/// Staging folders (`ObjectKey.reservedPrefix`) left by a process that died mid-job: partial
/// outputs, a downloaded input of up to `maxInputBytes`. A job that runs again clears its own,
/// but one cancelled meanwhile or failed as `WorkerCrashed` never runs again. Past the longest a
/// job may run, nothing still writes or reads them.
enum AbandonedStaging {
    /// Whether nothing in `folder` (the folder itself, or anything below it) changed since `cutoff`.
    static func isAbandoned(_ folder: String, before cutoff: Date) -> Bool {
        let files = FileManager.default
        let paths = [folder] + ((try? files.subpathsOfDirectory(atPath: folder)) ?? []).map { folder + "/" + $0 }
        let changed = paths.compactMap { (try? files.attributesOfItem(atPath: $0))?[.modificationDate] as? Date }.max()
        return changed.map { $0 < cutoff } ?? false
    }
}

extension LocalObjectStorage {
    /// Removes every abandoned staging folder (`AbandonedStaging`) below the buckets' folders
    /// that nothing changed in for `age`; returns how many. Walks the whole storage, without
    /// following links.
    public func removeAbandonedStaging(olderThan age: Duration) -> Int {
        let cutoff = Date().addingTimeInterval(-Double(age.components.seconds))
        var removed = 0
        var folders = [root]
        while let folder = folders.popLast() {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
                let path = folder + "/" + name
                var status = stat()
                guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else { continue }
                guard name.utf8.starts(with: ObjectKey.reservedPrefix.utf8) else {
                    folders.append(path)
                    continue
                }
                if AbandonedStaging.isAbandoned(path, before: cutoff), (try? FileManager.default.removeItem(atPath: path)) != nil { removed += 1 }
            }
        }
        return removed
    }
}
