internal import CLibXML2

/// Why a document could not be parsed.
public struct XMLParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// libxml2's explanation, trimmed.
    public var reason: String
    /// 1-based line of the error, when libxml2 knows it.
    public var line: Int

    public var description: String {
        line > 0 ? "malformed XML at line \(line): \(reason)" : "malformed XML: \(reason)"
    }
}

/// Parses XML documents into `XMLTree`s with libxml2.
///
/// Hostile input gets nowhere: a document with a document type or entity declaration is refused
/// before libxml2 sees it (CI's documents have none; DTDs are how XXE and entity-expansion
/// attacks such as "billion laughs" get in), the parser never reaches the network
/// (`XML_PARSE_NONET`) nor substitutes entities, and elements may nest `maxDepth` deep at most.
/// The byte check is what keeps entities out: libxml2 would still declare a document's internal
/// entities for itself and replay their text, even to a handler without entity events.
public enum XMLDocumentParser {
    /// The deepest nesting of elements accepted (CI's deepest documents, workflows, nest about
    /// ten deep).
    public static let maxDepth = 32

    /// Parses `bytes` and returns the root element.
    public static func parse(_ bytes: some Collection<UInt8>) throws(XMLParseError) -> XMLTree {
        if bytes.isEmpty { throw XMLParseError(reason: "the document is empty", line: 0) }
        let contiguous = Array(bytes)
        if let declaration = declaration(in: contiguous) {
            throw XMLParseError(reason: "\(declaration) declarations are not accepted", line: 0)
        }
        CLibXML2_silenceErrors()
        guard let context = xmlNewParserCtxt() else {
            throw XMLParseError(reason: "libxml2 could not allocate a parser", line: 0)
        }
        defer { xmlFreeParserCtxt(context) }

        // libxml2 reports elements and text as it reads them, and the tree is built from those
        // events: the DOM libxml2 would otherwise build, walk and free is never made.
        var handler = TreeBuilder.saxHandler()
        var builder = TreeBuilder(maxDepth: maxDepth)
        let contextHandler = context.pointee.sax
        // Both pointers live only inside these closures, and libxml2 holds them only for
        // `xmlCtxtReadMemory`: the context is given its own handler back and forgets the builder
        // before the closures end.
        let wellFormed = withUnsafeMutablePointer(to: &handler) { handler in
            withUnsafeMutablePointer(to: &builder) { builder in
                context.pointee.sax = handler
                context.pointee._private = UnsafeMutableRawPointer(builder)
                defer {
                    // The context frees its handler with itself: it gets its own back.
                    context.pointee.sax = contextHandler
                    context.pointee._private = nil
                }
                let options = Int32(XML_PARSE_NONET.rawValue)
                let document = contiguous.withUnsafeBufferPointer { buffer in
                    buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) { base in
                        xmlCtxtReadMemory(context, base, Int32(buffer.count), nil, "UTF-8", options)
                    }
                }
                // With no start-document event libxml2 makes a document only to keep a document
                // type's entities in (see above); freed when it did.
                if let document { xmlFreeDoc(document) }
                return context.pointee.wellFormed != 0
            }
        }
        // First: a parse stopped at the depth limit still counts as well-formed to libxml2.
        if let failure = builder.failure { throw failure }
        guard wellFormed else { throw lastError(context) }
        guard let root = builder.root else {
            throw XMLParseError(reason: "the document has no root element", line: 0)
        }
        return root
    }

    private static let doctype = Array("DOCTYPE".utf8), entity = Array("ENTITY".utf8)

    /// `DOCTYPE` or `ENTITY` when the document holds such a declaration (`<!DOCTYPE`, `<!ENTITY`).
    private static func declaration(in bytes: [UInt8]) -> String? {
        var index = 0
        while index + 2 < bytes.count {
            if bytes[index] == UInt8(ascii: "<"), bytes[index + 1] == UInt8(ascii: "!") {
                let rest = bytes[(index + 2)...]
                if rest.starts(with: doctype) { return "DOCTYPE" }
                if rest.starts(with: entity) { return "ENTITY" }
            }
            index += 1
        }
        return nil
    }

    /// Parses a UTF-8 string.
    public static func parse(_ string: String) throws(XMLParseError) -> XMLTree {
        try parse(Array(string.utf8))
    }

    private static func lastError(_ context: xmlParserCtxtPtr) -> XMLParseError {
        guard let error = xmlCtxtGetLastError(context) else {
            return XMLParseError(reason: "unknown parse error", line: 0)
        }
        let message = error.pointee.message.map { String(cString: $0) } ?? "unknown parse error"
        return XMLParseError(
            reason: message.trimmingCharacters(in: " \n\r\t"),
            line: Int(error.pointee.line)
        )
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let scalars = Set(set.unicodeScalars)
        var view = Substring(self)
        while let first = view.unicodeScalars.first, scalars.contains(first) { view = view.dropFirst() }
        while let last = view.unicodeScalars.last, scalars.contains(last) { view = view.dropLast() }
        return String(view)
    }
}
