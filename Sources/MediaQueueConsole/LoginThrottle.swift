public import MediaQueueCore
import Synchronization

/// Failed console sign-ins, per account (a SecretId, or the admin token) and client address:
/// after `allowed` failures in a row, that pair waits before it may try again, a pause that
/// doubles with each further failure up to `longest`. Keyed by the pair rather than the address
/// alone, so that people behind one proxy do not lock each other out, and one guessing at an
/// account from many addresses is slowed at each.
public final class LoginThrottle: Sendable {
    private struct Entry {
        var failures = 0
        var blockedUntil: Timestamp?
        var last: Timestamp
    }

    public let allowed: Int
    public let first: Duration
    public let longest: Duration
    /// Pairs remembered at most; past this, those idle longest are forgotten first.
    let capacity: Int
    private let entries = Mutex<[String: Entry]>([:])

    public init(allowed: Int = 5, first: Duration = .seconds(30), longest: Duration = .seconds(3600), capacity: Int = 10_000) {
        self.allowed = allowed
        self.first = first
        self.longest = longest
        self.capacity = capacity
    }

    /// How long `account` from `client` must still wait before it may try; nil: it may now.
    public func wait(account: String, client: String, now: Timestamp) -> Duration? {
        entries.withLock { entries in
            guard let until = entries[Self.key(account, client)]?.blockedUntil, now < until else { return nil }
            return .milliseconds(until.milliseconds - now.milliseconds)
        }
    }

    public func failed(account: String, client: String, now: Timestamp) {
        entries.withLock { entries in
            let key = Self.key(account, client)
            var entry = entries[key] ?? Entry(last: now)
            entry.failures += 1
            entry.last = now
            if entry.failures >= allowed {
                let doublings = min(entry.failures - allowed, 20)
                entry.blockedUntil = now + min(first * (1 << doublings), longest)
            }
            entries[key] = entry
            if entries.count > capacity { Self.forgetIdlest(&entries, keeping: capacity / 2, now: now) }
        }
    }

    public func succeeded(account: String, client: String) {
        _ = entries.withLock { $0.removeValue(forKey: Self.key(account, client)) }
    }

    private static func key(_ account: String, _ client: String) -> String { account + "\u{0}" + client }

    /// Keeps the pairs still waiting first (flooding the table with new failures must not free a
    /// blocked one), then the most recently used of the others: `count` in all.
    private static func forgetIdlest(_ entries: inout [String: Entry], keeping count: Int, now: Timestamp) {
        let byUse = entries.sorted { $0.value.last > $1.value.last }
        let blocked = byUse.filter { $0.value.blockedUntil.map { now < $0 } ?? false }.prefix(count)
        let others = byUse.filter { !($0.value.blockedUntil.map { now < $0 } ?? false) }.prefix(max(0, count - blocked.count))
        entries = Dictionary(uniqueKeysWithValues: (blocked + others).map { ($0.key, $0.value) })
    }
}
