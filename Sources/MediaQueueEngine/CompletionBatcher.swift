import MediaQueueCore
import Synchronization

/// Group commit for finished jobs: jobs that end while a write is in flight are written together
/// in the next transaction, so the store sees one write per batch instead of one per job.
///
/// Each batch reads the callback rule of every queue it touches once, just before it commits, so
/// a rule change applies to every job recorded after it, at one read per queue per batch.
/// The first caller to find no write in flight starts one; later callers only enqueue and wait.
/// Each caller still learns whether its own job was recorded (false when its lease was lost).
///
/// The batch's transaction also claims jobs, through the dispatcher's handle, for the slots the
/// batch frees (and any other free ones): the next jobs start without a claim transaction of
/// their own. The batch frees its jobs' slots; callers must not.
public final class CompletionBatcher: Sendable {
    private typealias Waiter = CheckedContinuation<Result<Bool, any Error>, Never>

    private struct State {
        var pending: [(job: Job, waiter: Waiter)] = []
        var writing = false
        var linger: BatchLinger
    }

    private let state: Mutex<State>
    private let store: any JobStore
    private let dispatcher: DispatcherHandle
    private let formatting: CIFormatting
    private let time: any TimeSource
    private let maxBatch: Int
    private let handoff: DeliveryHandoff?
    private let relayWakeups: RelayWakeups
    private let rewriteWindow: Duration

    /// `handoff`: where committed TDMQ deliveries go at once (this process's relay), if anywhere;
    /// they are committed leased to that relay. `rewriteWindow`: how long a batch whose write
    /// failed is written again (the jobs' lease: after it, another claim may have taken them).
    init(
        store: any JobStore, dispatcher: DispatcherHandle, formatting: CIFormatting, time: any TimeSource, maxBatch: Int,
        linger: Duration, handoff: DeliveryHandoff? = nil, relayWakeups: RelayWakeups = RelayWakeups(), rewriteWindow: Duration = .seconds(60)
    ) {
        self.rewriteWindow = rewriteWindow
        self.dispatcher = dispatcher
        self.relayWakeups = relayWakeups
        state = Mutex(State(linger: BatchLinger(linger)))
        self.handoff = handoff
        self.store = store
        self.formatting = formatting
        self.time = time
        self.maxBatch = maxBatch
    }

    /// Records `job`'s end, with the callback its queue's rule (or its own override) asks for,
    /// and returns once it is committed.
    func finish(_ job: Job) async throws -> Bool {
        let result = await withCheckedContinuation { (waiter: Waiter) in
            let startWriting = state.withLock { state -> Bool in
                state.pending.append((job, waiter))
                if state.writing { return false }
                state.writing = true
                return true
            }
            // A task of its own: the write must finish even if this caller's task is cancelled,
            // because other callers' jobs ride in the same batch.
            if startWriting { Task { await self.writeUntilEmpty() } }
        }
        return try result.get()
    }

    private func writeUntilEmpty() async {
        while true {
            // A moment for other jobs ending now to join the batch (one write instead of many),
            // while jobs end together (`BatchLinger`).
            let linger = state.withLock { $0.linger.shouldWait(size: $0.pending.count, limit: maxBatch) ? $0.linger.duration : nil }
            if let linger { try? await time.sleep(for: linger) }
            let batch = state.withLock { state -> [(job: Job, waiter: Waiter)] in
                guard !state.pending.isEmpty else {
                    state.writing = false
                    return []
                }
                let batch = Array(state.pending.prefix(maxBatch))
                state.pending.removeFirst(batch.count)
                state.linger.record(size: batch.count)
                return batch
            }
            guard !batch.isEmpty else { return }
            do {
                let (finished, recorded) = try await write(batch.map(\.job))
                announce(batch, finished: finished, recorded: recorded)
            } catch {
                await rewrite(batch, after: error)
            }
        }
    }

    /// Hands the committed deliveries on, wakes who has new work, and answers the callers.
    private func announce(_ batch: [(job: Job, waiter: Waiter)], finished: [FinishedJob], recorded: [Bool]) {
        let committed = zip(finished, recorded).flatMap { job, ok in ok ? job.outbox : [] }
        handoff?.push(committed)
        // One wakeup per batch and only for the relay that has something new (a handoff
        // push wakes the TDMQ relay itself): waking both per job made the idle one read
        // the outbox thousands of times a second.
        if handoff == nil && committed.contains(where: \.isTDMQ) { relayWakeups.tdmq?.signal() }
        if committed.contains(where: { !$0.isTDMQ }) { relayWakeups.http?.signal() }
        relayWakeups.workflows?.add(zip(batch, recorded).compactMap { $1 ? $0.job.workflowRunID : nil })
        for (entry, ok) in zip(batch, recorded) { entry.waiter.resume(returning: .success(ok)) }
    }

    /// Writes a batch whose write failed again, within `rewriteWindow`, pausing longer each
    /// time: given up, its jobs would run again from the start once their leases ended (their
    /// callers keep the jobs, and so their leases, meanwhile). Without a claim: the failed write
    /// freed the batch's slots already. Later batches wait for it, so a store that is away
    /// costs one write every few seconds, not one per batch.
    private func rewrite(_ batch: [(job: Job, waiter: Waiter)], after failure: any Error) async {
        var failure = failure
        let jobs = batch.map(\.job)
        let giveUp = time.now + rewriteWindow
        var pause = Duration.milliseconds(250)
        while !(failure is CancellationError), time.now + pause < giveUp {
            try? await time.sleep(for: pause)
            pause = min(pause * 2, .seconds(5))
            do {
                let finished = try await withCallbacks(jobs)
                announce(batch, finished: finished, recorded: try await store.finish(finished, owner: dispatcher.owner))
                return
            } catch {
                failure = error
            }
        }
        for entry in batch { entry.waiter.resume(returning: .failure(failure)) }
    }

    /// Ends the jobs, whatever the write's outcome for their slots, and claims for the freed
    /// slots (and any other free ones) in the same transaction.
    private func write(_ jobs: [Job]) async throws -> (finished: [FinishedJob], recorded: [Bool]) {
        let owner = dispatcher.owner
        return try await dispatcher.claim(upTo: .max, ending: jobs.count, onlyForBacklog: true, now: time.now) { claim in
            let finished = try await withCallbacks(jobs)
            guard let claim else {
                return ((finished, try await store.finish(finished, owner: owner)), ClaimResult(jobs: [], moreWaiting: false))
            }
            let (recorded, claimed) = try await store.finish(finished, owner: owner, thenClaim: claim)
            return ((finished, recorded), claimed)
        }
    }

    /// Each job with the outbox row its callback target asks for, reading each queue once.
    private func withCallbacks(_ jobs: [Job]) async throws -> [FinishedJob] {
        var queues: [QueueID: MediaQueue?] = [:]
        for id in Set(jobs.map(\.queueID)) { queues[id] = try await store.queue(id: id) }
        let now = time.now
        return jobs.map { job in
            guard let queue = queues[job.queueID] ?? nil,
                  let target = CallbackTarget.resolve(rule: queue.notifyConfig, override: job.callback)
            else { return FinishedJob(job: job, outbox: []) }
            let entry = OutboxEntry.taskFinish(job, target: target, formatting: formatting, now: now)
            return FinishedJob(job: job, outbox: [handoff?.leased(entry, now: now) ?? entry])
        }
    }
}
