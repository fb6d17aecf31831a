import MediaQueueCore
import MediaQueueXML

/// One parser that hostile input reaches, with the properties that must hold for any input.
///
/// Run by libFuzzer (`scripts/fuzz.sh`, the `mediaqueue-fuzz` harness built with
/// `-sanitize=fuzzer,address`) and, over the seed corpora and every crash found so far
/// (`Fuzz/Corpus`, `Fuzz/Regressions`), by the unit tests. A broken property stops the process
/// (`fatalError`), which libFuzzer reports as a crash with the input that caused it.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// libxml2 through the wrapper: what parses serializes to XML that parses to the same tree.
    case xml
    /// CreateMediaJobs `<Request>` (XML or JSON) with CI's limits and every operation accepted.
    case createMediaJobs = "create-media-jobs"
    /// UpdateMediaQueue `<Request>`.
    case updateMediaQueue = "update-media-queue"
    /// The JSON form: what it accepts is written as XML that parses back to the same tree.
    case json
    /// The COS `Authorization` header and a presigned URL's query.
    case cosAuthorization = "cos-authorization"
    /// An HTTP `Retry-After` value: never a negative delay.
    case retryAfter = "retry-after"
    /// Object keys: what is accepted stays inside the bucket.
    case objectKey = "object-key"
    /// CI's time format: what parses formats to a time that parses to the same instant.
    case ciTime = "ci-time"
    /// A GET Object's `Range` header: an accepted range is not empty and lies within the object.
    case byteRange = "byte-range"
    /// Form bodies and query strings (the console's forms): any value, encoded, decodes to itself.
    case formData = "form-data"

    public func run(_ data: [UInt8]) {
        switch self {
        case .xml: Self.xmlRoundTrip(data)
        case .createMediaJobs: _ = try? CreateMediaJobsRequest.parse(data) { _ in }
        case .updateMediaQueue: _ = try? QueueUpdateRequest.parse(data)
        case .json: Self.jsonRoundTrip(data)
        case .cosAuthorization: Self.cosAuthorization(data)
        case .retryAfter: Self.retryAfter(data)
        case .objectKey: Self.objectKey(data)
        case .ciTime: Self.ciTime(data)
        case .byteRange: Self.byteRange(data)
        case .formData: Self.formData(data)
        }
    }

    static func xmlRoundTrip(_ data: [UInt8]) {
        guard let tree = try? XMLDocumentParser.parse(data) else { return }
        let written = tree.xmlBytes()
        guard let again = try? XMLDocumentParser.parse(written) else {
            fatalError("a parsed document was written as XML that does not parse: \(tree.xmlString())")
        }
        if again != tree { fatalError("a parsed document changed on its way through XML: \(tree) became \(again)") }
    }

    static func jsonRoundTrip(_ data: [UInt8]) {
        guard let tree = try? JSONTree.parse(data, rootName: "Request") else { return }
        let written = tree.xmlBytes()
        guard let again = try? XMLDocumentParser.parse(written) else {
            fatalError("a JSON request was written as XML that does not parse: \(String(decoding: written, as: UTF8.self))")
        }
        if again != tree { fatalError("a JSON request changed on its way through XML: \(tree) became \(again)") }
    }

    static func cosAuthorization(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        if let header = try? COSAuthorization(header: text) {
            if header.signStart > header.signEnd { fatalError("a signature valid from \(header.signStart) to \(header.signEnd)") }
            if header.keyStart > header.keyEnd { fatalError("a signing key valid from \(header.keyStart) to \(header.keyEnd)") }
            if header.secretID.isEmpty { fatalError("a signature without q-ak was accepted") }
        }
        let query = text.split(separator: "&").map { pair -> (String, String) in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
        if let presigned = try? COSAuthorization(query: query), presigned.signStart > presigned.signEnd {
            fatalError("a presigned URL valid from \(presigned.signStart) to \(presigned.signEnd)")
        }
    }

    static func retryAfter(_ data: [UInt8]) {
        let now = Timestamp(seconds: 1_700_000_000)
        if let delay = RetryAfter.delay(String(decoding: data, as: UTF8.self), now: now), delay < .zero {
            fatalError("Retry-After gave a negative delay: \(delay)")
        }
    }

    static func objectKey(_ data: [UInt8]) {
        let key = String(decoding: data, as: UTF8.self)
        guard ObjectKey.problem(key) == nil else { return }
        // Checked again here without the type's own code: a key that passed must stay in its bucket.
        let segments = key.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        let escapes = key.hasPrefix("/") || key.utf8.count > ObjectKey.maxLength || key.utf8.contains(0)
            || segments.contains { $0.isEmpty || $0.elementsEqual("..".utf8) || $0.elementsEqual(".".utf8) }
        if escapes { fatalError("an object key that leaves its bucket was accepted: \(key.debugDescription)") }
    }

    static func ciTime(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        guard let time = CITimeFormat.parse(text) else { return }
        for offset in [0, 8 * 3600, -(5 * 3600 + 30 * 60)] {
            let written = CITimeFormat(utcOffsetSeconds: offset).format(time)
            guard let again = CITimeFormat.parse(written), again == time else {
                fatalError("\(text.debugDescription) parsed to \(time.seconds) s, written as \(written), read back as \(String(describing: CITimeFormat.parse(written)?.seconds))")
            }
        }
    }

    static func byteRange(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        for size in [0, 1, 1000, Int.max] {
            guard let range = ByteRange.parse(text, size: size) else { continue }
            if range.isEmpty || range.lowerBound < 0 || range.upperBound > size {
                fatalError("\(text.debugDescription) gave bytes \(range) of an object of \(size)")
            }
        }
    }

    static func formData(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        _ = FormData(text)
        let decoded = FormData("before=1&value=" + URIEncoding.encode(text) + "&after=2")
        if decoded.all("value") != [text] || decoded.all("before") != ["1"] || decoded.all("after") != ["2"] {
            fatalError("\(text.debugDescription) encoded in a form read back as \(decoded.all("value"))")
        }
    }
}
