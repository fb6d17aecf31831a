// A correctly locked counter: eight threads bump it under one Synchronization.Mutex.
// scripts/sanitizers.sh builds this with -sanitize=thread; if ThreadSanitizer reports a race
// here, it cannot see this toolchain's Mutex, and reports inside withLock bodies are not races.
import Dispatch
import Synchronization

final class Counter: Sendable {
    let state = Mutex([UInt64](repeating: 0, count: 8))

    func bump(_ index: Int) {
        state.withLock { $0[index % 8] &+= 1 }
    }
}

let counter = Counter()
DispatchQueue.concurrentPerform(iterations: 8) { thread in
    for step in 0..<100_000 { counter.bump(thread + step) }
}
print(counter.state.withLock { $0.reduce(0, &+) })
