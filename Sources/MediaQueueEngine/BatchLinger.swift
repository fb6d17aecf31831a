/// When a batch smaller than its limit waits for more: only while batches come with company.
///
/// A wait gathers more work into one transaction, which is what keeps a busy service's CPU per
/// job low (and with it the tail latency of everything sharing the machine); but a lone message
/// on an otherwise idle service would only be delayed. So the wait applies once the previous
/// batch held more than one item: work was arriving faster than it was written.
struct BatchLinger {
    /// How long a batch waits for more.
    let duration: Duration
    private var previousBatchSize = 0

    init(_ duration: Duration) {
        self.duration = duration
    }

    /// Whether a batch of `size` (the limit being `limit`) should wait for more.
    func shouldWait(size: Int, limit: Int) -> Bool {
        duration > .zero && size < limit && previousBatchSize > 1
    }

    /// The batch that just went out held `size` items.
    mutating func record(size: Int) {
        previousBatchSize = size
    }
}
