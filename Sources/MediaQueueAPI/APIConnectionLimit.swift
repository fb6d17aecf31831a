import Glibc
import HummingbirdCore
import Logging

/// How many connections the API holds at once: at the limit it accepts no more (they wait in the
/// kernel's backlog) until one closes, so clients cannot use up the descriptors the store,
/// storage and ffmpeg need. Hummingbird asks it on its event loop, one call at a time.
struct APIConnectionLimit: AvailableConnectionsDelegate {
    let limit: Int
    let logger: Logger
    private var open = 0
    /// Whether reaching the limit was logged: once, until the connections fall to three quarters
    /// of it, so a limit that stays full does not log every accept.
    private var warned = false

    init(_ limit: Int, logger: Logger) {
        self.limit = limit
        self.logger = logger
    }

    /// Half the process's open-file limit: the other half stays for everything else.
    static var half: Int {
        var files = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &files) == 0, files.rlim_cur != rlim_t.max else { return 4096 }
        return max(1, Int(clamping: files.rlim_cur / 2))
    }

    mutating func connectionOpened() {
        open += 1
        if open >= limit, !warned {
            warned = true
            logger.warning("the API holds as many connections as it may; new ones wait until one closes", metadata: ["api.maxConnections": "\(limit)"])
        }
    }

    mutating func connectionClosed() {
        open -= 1
        if open <= limit * 3 / 4 { warned = false }
    }

    func isAcceptingNewConnections() -> Bool {
        open < limit
    }
}
