extension Int {
    /// `value` without its fraction, held to Int's range (NaN is 0). `Int(_: Double)` traps for a
    /// value it cannot hold, and values worked out from what a client or a media file says (a
    /// duration over a tiny interval, an output's length against its expected one) can be any.
    public init(saturating value: Double) {
        if value.isNaN {
            self = 0
        } else if value >= Double(Int.max) {
            self = .max
        } else if value <= Double(Int.min) {
            self = .min
        } else {
            self = Int(value)
        }
    }
}
