import Foundation
import MediaQueueCore

/// The keys of a bucket folder's regular files that a listing page may show, in the order of
/// their bytes (ListObjects' order), read folder by folder only as far as the page asks. Each
/// folder's entries are sorted with a `/` after a folder's name, which puts every key under
/// the folder where it sorts among its neighbours' keys.
///
/// What cannot be on the page is not read: folders that do not match the prefix, and folders
/// whose keys all sort before the marker. With the delimiter `/`, a folder past the prefix is
/// one common prefix on the page, so only its first key is looked for.
///
/// It leaves out the store's own folders and files (`ObjectKey.reservedPrefix`), symbolic links
/// and other special files. Not FileManager's enumerator: it gives a name that starts with a
/// combining mark as a whole path, without its attributes.
struct SortedKeyWalk: Sequence, IteratorProtocol {
    private struct Entry {
        /// The file's key, or the folder's with a `/` after it.
        var key: [UInt8]
        var isFolder: Bool
    }

    private let bucketFolder: String
    private let prefix: [UInt8]
    private let marker: [UInt8]
    private let rollsUpFolders: Bool
    /// The entries still to walk of each folder open, the next one last.
    private var pending: [[Entry]]

    /// The keys under `start` (a folder's key, "" for the bucket) that match `query`.
    init(bucketFolder: String, from start: String, _ query: ObjectListQuery) {
        self.bucketFolder = bucketFolder
        prefix = Array(query.prefix.utf8)
        marker = Array(query.marker.utf8)
        rollsUpFolders = query.delimiter == "/"
        pending = []
        pending = [entries(ofFolder: start.isEmpty ? [] : Array(start.utf8) + [UInt8(ascii: "/")])]
    }

    mutating func next() -> [UInt8]? {
        while !pending.isEmpty {
            guard let entry = pending[pending.count - 1].popLast() else {
                pending.removeLast()
                continue
            }
            guard entry.isFolder else { return entry.key }
            if rollsUpFolders, entry.key.count > prefix.count {
                // One common prefix: a marker inside it means it was on an earlier page.
                if marker.starts(with: entry.key) { continue }
                if let first = firstKey(under: entry.key) { return first }
                continue
            }
            pending.append(entries(ofFolder: entry.key))
        }
        return nil
    }

    /// The first key under the folder whose key (with its `/`) is `folder`; nil when it holds
    /// no file.
    private func firstKey(under folder: [UInt8]) -> [UInt8]? {
        for entry in entries(ofFolder: folder).reversed() {
            if !entry.isFolder { return entry.key }
            if let key = firstKey(under: entry.key) { return key }
        }
        return nil
    }

    /// The entries of a folder (`folder`: its key with its `/`, empty for the bucket) that may
    /// hold keys of the page, the first in order last.
    private func entries(ofFolder folder: [UInt8]) -> [Entry] {
        let path = folder.isEmpty ? bucketFolder : bucketFolder + "/" + String(decoding: folder.dropLast(), as: UTF8.self)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return [] }
        var entries: [Entry] = []
        for name in names where !name.utf8.starts(with: ObjectKey.reservedPrefix.utf8) {
            let file = Entry(key: folder + Array(name.utf8), isFolder: false)
            let subfolder = Entry(key: file.key + [UInt8(ascii: "/")], isFolder: true)
            // Decided before the file system is asked what the name is: on a later page of a
            // large folder, most names are before the marker.
            let asFile = mayHoldPageKeys(file), asFolder = mayHoldPageKeys(subfolder)
            guard asFile || asFolder else { continue }
            var status = stat()
            guard lstat(path + "/" + name, &status) == 0 else { continue }
            switch status.st_mode & S_IFMT {
            case S_IFREG where asFile: entries.append(file)
            case S_IFDIR where asFolder: entries.append(subfolder)
            default: continue
            }
        }
        return entries.sorted { $1.key.lexicographicallyPrecedes($0.key) }
    }

    private func mayHoldPageKeys(_ entry: Entry) -> Bool {
        guard entry.isFolder else {
            return entry.key.starts(with: prefix) && (marker.isEmpty || marker.lexicographicallyPrecedes(entry.key))
        }
        guard entry.key.starts(with: prefix) || prefix.starts(with: entry.key) else { return false }
        // Every key under a folder that sorts before the marker, and does not hold it, sorts
        // before the marker too.
        return marker.isEmpty || !entry.key.lexicographicallyPrecedes(marker) || marker.starts(with: entry.key)
    }
}
