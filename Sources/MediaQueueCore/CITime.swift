/// CI's time format, `2022-06-27T15:23:10+0800`: ISO 8601 with the offset written without a colon.
///
/// Written by hand rather than with a date formatter: it is on the path of every callback.
public struct CITimeFormat: Sendable, Hashable {
    /// Offset from UTC in seconds that times are shown in.
    public var utcOffsetSeconds: Int

    public init(utcOffsetSeconds: Int = 0) {
        self.utcOffsetSeconds = utcOffsetSeconds
    }

    /// Formats `secondsSince1970` (whole seconds; fractions are dropped as CI does).
    public func format(_ time: Timestamp) -> String {
        let local = time.seconds + Int64(utcOffsetSeconds)
        var days = local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
        let secondsOfDay = local - days * 86_400
        // Civil-from-days (Howard Hinnant's algorithm), proleptic Gregorian.
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let dayOfEra = days - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)

        let offset = Int64(abs(utcOffsetSeconds) / 60)
        // Written digit by digit into one buffer: three times per callback body, and building it
        // from padded pieces allocated a string for each.
        return String(unsafeUninitializedCapacity: 24) { buffer in
            var position = 0
            func put(_ value: Int64, width: Int) {
                var rest = value
                for index in stride(from: position + width - 1, through: position, by: -1) {
                    buffer[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
                position += width
            }
            func put(_ character: Unicode.Scalar) {
                buffer[position] = UInt8(ascii: character)
                position += 1
            }
            put(min(max(year, 0), 9999), width: 4)
            put("-")
            put(month, width: 2)
            put("-")
            put(day, width: 2)
            put("T")
            put(secondsOfDay / 3600, width: 2)
            put(":")
            put(secondsOfDay / 60 % 60, width: 2)
            put(":")
            put(secondsOfDay % 60, width: 2)
            put(utcOffsetSeconds < 0 ? "-" : "+")
            put(offset / 60 % 100, width: 2)
            put(offset % 60, width: 2)
            return position
        }
    }

    /// Formats an optional time; CI prints `-` for a time that has not happened.
    public func format(_ time: Timestamp?) -> String {
        time.map { format($0) } ?? "-"
    }

    /// Parses `2001-01-01T00:00:00+0800` (also accepts `Z` and `+08:00`). Offsets up to ±14:00,
    /// and instants from 0000-01-02 to 9999-12-30 (UTC) only, so that every time read here is
    /// written again in four-digit years whatever the offset it is shown in.
    public static func parse(_ string: String) -> Timestamp? {
        let bytes = Array(string.utf8)
        guard bytes.count >= 20 else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                guard index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 else { return nil }
                value = value * 10 + Int64(bytes[index] - 48)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var offsetSeconds: Int64 = 0
        let zone = Array(bytes[19...])
        if zone == [UInt8(ascii: "Z")] {
            offsetSeconds = 0
        } else {
            let digits = zone.dropFirst().filter { $0 != UInt8(ascii: ":") }
            guard let sign = zone.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-"), digits.count == 4,
                  digits.allSatisfy({ $0 >= 48 && $0 <= 57 })
            else { return nil }
            let value = digits.reduce(Int64(0)) { $0 * 10 + Int64($1 - 48) }
            guard value % 100 < 60, value <= 1400 else { return nil }
            offsetSeconds = (value / 100 * 3600 + value % 100 * 60) * (sign == UInt8(ascii: "-") ? -1 : 1)
        }
        // Days-from-civil.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        guard seconds >= Self.earliestSeconds, seconds < Self.latestSeconds else { return nil }
        return Timestamp(seconds: seconds)
    }

    /// 0000-01-02T00:00:00Z and 9999-12-31T00:00:00Z in Unix seconds.
    static let earliestSeconds: Int64 = -62_167_132_800
    static let latestSeconds: Int64 = 253_402_214_400
}

/// A point in wall-clock time, in milliseconds since 1970 (what the store keeps).
public struct Timestamp: Sendable, Hashable, Comparable {
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }
    public init(seconds: Int64) { self.milliseconds = seconds * 1000 }

    public var seconds: Int64 { milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000 }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.milliseconds < rhs.milliseconds }

    public static func - (lhs: Timestamp, rhs: Duration) -> Timestamp {
        lhs + (.zero - rhs)
    }

    public static func + (lhs: Timestamp, rhs: Duration) -> Timestamp {
        let (seconds, attoseconds) = rhs.components
        return Timestamp(milliseconds: lhs.milliseconds + seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}
