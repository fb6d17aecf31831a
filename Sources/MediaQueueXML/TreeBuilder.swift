internal import CLibXML2

/// Builds an `XMLTree` from libxml2's SAX2 events: element starts and ends, and text.
///
/// Text counts only in leaves, as in `XMLTree`: whitespace between child elements is layout. A
/// leaf's text is all of it, whitespace included, joined across CDATA sections, comments and
/// processing instructions (which carry nothing CI defines and have no events here).
struct TreeBuilder {
    /// Elements that ended while their parent is still open, in document order. An open element's
    /// children are the tail of this list from the index it recorded when it started, so each
    /// container's children array is made once, at its full size.
    private var ended: [XMLTree] = []
    private var open: [(name: String, firstChild: Int)] = []
    /// The text since the last element started or ended: a leaf's whole text when it ends.
    private var text: [UInt8] = []
    private(set) var root: XMLTree?
    /// Set when the document nests deeper than `maxDepth`; the parse is stopped then.
    private(set) var failure: XMLParseError?
    private let maxDepth: Int

    init(maxDepth: Int) {
        self.maxDepth = maxDepth
    }

    /// Whether the parse may go on: false when the element would nest too deep.
    ///
    /// An element is named by its local name when its prefix is declared (`ci:Tag` in
    /// `xmlns:ci="…"` is `Tag`), and by its whole name when it is not.
    mutating func start(_ localName: UnsafePointer<xmlChar>, prefix: UnsafePointer<xmlChar>?, prefixIsDeclared: Bool, line: Int) -> Bool {
        guard open.count < maxDepth else {
            failure = XMLParseError(reason: "elements nest deeper than \(maxDepth) levels", line: line)
            return false
        }
        let name = if let prefix, !prefixIsDeclared { String(cString: prefix) + ":" + String(cString: localName) } else { String(cString: localName) }
        open.append((name, ended.count))
        text.removeAll(keepingCapacity: true)
        return true
    }

    mutating func end() {
        let (name, firstChild) = open.removeLast()
        let element: XMLTree
        if firstChild == ended.count {
            element = XMLTree(name, text: String(decoding: text, as: UTF8.self))
        } else {
            element = XMLTree(name, children: Array(ended[firstChild...]))
            ended.removeSubrange(firstChild...)
        }
        text.removeAll(keepingCapacity: true)
        if open.isEmpty { root = element } else { ended.append(element) }
    }

    mutating func characters(_ bytes: UnsafePointer<xmlChar>, count: Int) {
        text.append(contentsOf: UnsafeBufferPointer(start: bytes, count: count))
    }

    /// A handler whose events reach the `TreeBuilder` in the parser context's `_private`: only
    /// element and text events (no document, so no DOM; no external subset, so nothing loaded).
    ///
    /// Each callback's `context` is the parser context itself: libxml2 passes its `userData`,
    /// which a context made by `xmlNewParserCtxt` points at itself.
    static func saxHandler() -> xmlSAXHandler {
        var handler = xmlSAXHandler()
        handler.initialized = XML_SAX2_MAGIC
        handler.startElementNs = { context, name, prefix, namespace, _, _, _, _, _ in
            guard let context, let name else { return }
            let parser = context.assumingMemoryBound(to: xmlParserCtxt.self)
            let line = Int(parser.pointee.input?.pointee.line ?? 0)
            if !builder(parser).pointee.start(name, prefix: prefix, prefixIsDeclared: namespace != nil, line: line) {
                xmlStopParser(parser)
            }
        }
        handler.endElementNs = { context, _, _, _ in
            guard let context else { return }
            builder(context.assumingMemoryBound(to: xmlParserCtxt.self)).pointee.end()
        }
        handler.characters = { context, bytes, count in
            guard let context, let bytes else { return }
            builder(context.assumingMemoryBound(to: xmlParserCtxt.self)).pointee.characters(bytes, count: Int(count))
        }
        handler.cdataBlock = handler.characters
        // The same function for both tells libxml2 to treat no whitespace as ignorable.
        handler.ignorableWhitespace = handler.characters
        // Errors are read from the context afterwards (`xmlCtxtGetLastError`), never printed.
        handler.serror = { _, _ in }
        return handler
    }
}

/// The builder a parse put in its context (a free function: a C callback captures nothing).
/// `XMLDocumentParser.parse` sets `_private` to its `TreeBuilder` for exactly as long as libxml2
/// can call back, and libxml2 copies it into any context it makes for itself meanwhile.
private func builder(_ parser: xmlParserCtxtPtr) -> UnsafeMutablePointer<TreeBuilder> {
    parser.pointee._private!.assumingMemoryBound(to: TreeBuilder.self)
}
