import Foundation
public import MediaQueueXML

/// CI's JSON form of its XML documents: a mechanical conversion in which every scalar is a string,
/// repeated elements become arrays, an element with children becomes an object, and an empty
/// element is left out (spec §5.3: CI drops a success's empty `Message`). Written as `""`, an
/// empty container (`<Format/>` of a probe that found nothing) failed the decoding of clients
/// that bind it to a struct; left out, it decodes in every language.
public enum JSONTree {
    /// Writes `tree`'s children as a JSON object (the root element's name is not written, as CI's
    /// JSON callbacks have no `Response` wrapper).
    public static func serializeChildren(of tree: XMLTree) -> String {
        var out = ""
        out.reserveCapacity(1024)
        writeObject(tree.children, arrays: listFields, into: &out)
        return out
    }

    /// Fields CI's JSON documents write as arrays even when there is one element (spec §5.3,
    /// §5.4): a workflow run's `Tasks`, an upload's `CosHeaders`.
    static let listFields: Set<String> = ["Tasks", "CosHeaders"]

    private static func writeObject(_ children: [XMLTree], arrays: Set<String>, into out: inout String) {
        out += "{"
        // Grouped in one pass: a filter per distinct name cost time in the square of the
        // element count, which a submission's `Input` (echoed in every callback) chooses.
        var names: [String] = []
        var byName: [String: [XMLTree]] = [:]
        for child in children where !child.children.isEmpty || !child.text.isEmpty {
            if byName[child.name] == nil { names.append(child.name) }
            byName[child.name, default: []].append(child)
        }
        var first = true
        for name in names {
            let siblings = byName[name] ?? []
            if !first { out += "," }
            first = false
            writeString(name, into: &out)
            out += ":"
            if siblings.count > 1 || arrays.contains(name) {
                out += "["
                for (index, sibling) in siblings.enumerated() {
                    if index > 0 { out += "," }
                    writeValue(sibling, arrays: arrays, into: &out)
                }
                out += "]"
            } else {
                writeValue(siblings[0], arrays: arrays, into: &out)
            }
        }
        out += "}"
    }

    private static func writeValue(_ element: XMLTree, arrays: Set<String>, into out: inout String) {
        if element.children.isEmpty {
            writeString(element.text, into: &out)
        } else {
            writeObject(element.children, arrays: arrays, into: &out)
        }
    }

    static func writeString(_ string: String, into out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// Reads a JSON object (optionally wrapped as `{"Request": {...}}`) into an element named `rootName`.
    public static func parse(_ bytes: [UInt8], rootName: String) throws(CIError) -> XMLTree {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes))
        } catch {
            throw CIError(.invalidArgument, "the body is not valid JSON", element: rootName)
        }
        guard var dictionary = object as? [String: Any] else {
            throw CIError(.invalidArgument, "the JSON body must be an object", element: rootName)
        }
        if dictionary.count == 1, let inner = dictionary[rootName] as? [String: Any] {
            dictionary = inner
        }
        return XMLTree(rootName, children: try elements(from: dictionary, path: rootName, depth: 1))
    }

    /// As deep as the XML parser lets a document nest.
    public static let maxDepth = XMLDocumentParser.maxDepth

    /// Every key must be an element name and every string XML text, so that what a JSON request
    /// stored is written back as well-formed XML (in callbacks and API answers) and means there
    /// what it meant here.
    private static func elements(from dictionary: [String: Any], path: String, depth: Int) throws(CIError) -> [XMLTree] {
        guard depth < maxDepth else { throw CIError.invalid(path, "nests deeper than \(maxDepth) levels") }
        var trees: [XMLTree] = []
        for key in dictionary.keys.sorted() {
            guard isElementName(key) else {
                throw CIError.invalid(path, "the key \(quoted(key)) is not a name (letters, digits, '_', '-' and '.', starting with a letter or '_')")
            }
            trees += try elements(named: key, value: dictionary[key]!, path: "\(path).\(key)", depth: depth + 1)
        }
        return trees
    }

    private static func elements(named name: String, value: Any, path: String, depth: Int) throws(CIError) -> [XMLTree] {
        switch value {
        case let array as [Any]:
            var trees: [XMLTree] = []
            for item in array { trees += try elements(named: name, value: item, path: path, depth: depth + 1) }
            return trees
        case let object as [String: Any]:
            return [XMLTree(name, children: try elements(from: object, path: path, depth: depth))]
        case let string as String:
            guard isXMLText(string) else { throw CIError.invalid(path, "contains a character XML cannot carry (a control character)") }
            return [XMLTree(name, text: string)]
        case let bool as Bool where type(of: value) == type(of: true as Any):
            return [XMLTree(name, text: bool ? "true" : "false")]
        case let number as NSNumber:
            return [XMLTree(name, text: number.stringValue)]
        case is NSNull:
            return [XMLTree(name)]
        default:
            return [XMLTree(name, text: "\(value)")]
        }
    }

    /// An XML name of ASCII letters, digits, `_`, `-` and `.`, not starting with a digit, `-` or `.`
    /// (CI's element names are all of this kind; no namespaces).
    static func isElementName(_ key: String) -> Bool {
        guard let first = key.utf8.first, isLetter(first) || first == UInt8(ascii: "_") else { return false }
        return key.utf8.allSatisfy { byte in
            isLetter(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    /// XML 1.0's Char: no C0 control but tab, LF and CR, and not U+FFFE or U+FFFF.
    static func isXMLText(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { scalar in
            let value = scalar.value
            return (value >= 0x20 || value == 0x09 || value == 0x0A || value == 0x0D) && value != 0xFFFE && value != 0xFFFF
        }
    }

    private static func quoted(_ key: String) -> String {
        "'" + String(key.unicodeScalars.prefix(40).map { $0.value < 0x20 ? "?" : Character($0) }) + "'"
    }
}
