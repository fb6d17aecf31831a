/// The date forms of HTTP headers (`Last-Modified`) and of S3's XML (`2009-10-12T17:50:30.000Z`).
public enum HTTPDate {
    private static let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `Sun, 06 Nov 1994 08:49:37 GMT`.
    public static func format(_ time: Timestamp) -> String {
        let iso = CITimeFormat().format(time)  // 1994-11-06T08:49:37+0000
        let days = time.seconds >= 0 ? time.seconds / 86_400 : (time.seconds - 86_399) / 86_400
        let weekday = weekdays[Int(((days % 7) + 7) % 7)]
        let parts = iso.split(separator: "T")
        let date = parts[0].split(separator: "-")
        let month = months[(Int(date[1]) ?? 1) - 1]
        return "\(weekday), \(date[2]) \(month) \(date[0]) \(parts[1].prefix(8)) GMT"
    }

    /// Any of HTTP's three date forms.
    public static func parse(_ text: String) -> Timestamp? {
        RetryAfter.httpDateSeconds(text).map { Timestamp(seconds: $0) }
    }

    /// `2009-10-12T17:50:30.000Z`, as S3 and COS write times in XML.
    public static func formatISO(_ time: Timestamp) -> String {
        String(CITimeFormat().format(time).prefix(19)) + ".000Z"
    }

    /// An ISO 8601 time with or without fractions of a second.
    public static func parseISO(_ text: String) -> Timestamp? {
        guard let dot = text.firstIndex(of: "."), let zone = text[dot...].firstIndex(where: { $0 == "Z" || $0 == "+" || $0 == "-" }) else {
            return CITimeFormat.parse(text)
        }
        return CITimeFormat.parse(String(text[..<dot] + text[zone...]))
    }
}
