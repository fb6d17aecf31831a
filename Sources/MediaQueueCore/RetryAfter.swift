/// Reads an HTTP `Retry-After` value: delay seconds (`120`) or an HTTP date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`; the obsolete RFC 850 and asctime forms too).
public enum RetryAfter {
    /// How long after `now` the server asks to wait (zero for a date in the past), or nil when
    /// the value is neither form.
    public static func delay(_ value: String, now: Timestamp) -> Duration? {
        let text = value.trimmed
        if !text.isEmpty, text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber) {
            // A number too large for Int64 is simply "very long"; the relay caps it anyway.
            return .seconds(Int64(text) ?? Int64(Int32.max))
        }
        guard let seconds = httpDateSeconds(text) else { return nil }
        let milliseconds = seconds * 1000 - now.milliseconds
        return .milliseconds(max(0, milliseconds))
    }

    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    /// Unix seconds of an HTTP date in any of its three forms.
    static func httpDateSeconds(_ text: String) -> Int64? {
        // Tokens of letters or digits; the weekday is ignored, the rest is found by shape.
        let tokens = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "-" }).map(String.init)
        var day: Int?, month: Int?, year: Int?, time: (Int, Int, Int)?
        for token in tokens {
            if token.contains(":") {
                let parts = token.split(separator: ":").compactMap { Int($0) }
                guard parts.count == 3 else { return nil }
                time = (parts[0], parts[1], parts[2])
            } else if let number = Int(token) {
                if day == nil && token.count <= 2 { day = number } else { year = number }
            } else if let index = months.firstIndex(of: token.lowercased().prefix(3).description), token.count == 3 {
                month = index + 1
            }
        }
        guard var year, let month, let day, let (hour, minute, second) = time,
              (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        if year < 100 { year += year < 70 ? 2000 : 1900 }  // RFC 850's two-digit years
        // A date is four digits at most; a longer year would overflow the arithmetic below.
        guard (1...9999).contains(year) else { return nil }
        return daysFromCivil(year: year, month: month, day: day) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let m = Int64(month)
        let dayOfYear = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
