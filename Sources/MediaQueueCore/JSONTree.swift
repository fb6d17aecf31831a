import Foundation
public import MediaQueueXML

/// CI's JSON form of its XML documents: a mechanical conversion in which every scalar is a string,
/// repeated elements become arrays and an element with children becomes an object (spec §5.3).
public enum JSONTree {
    /// Writes `tree`'s children as a JSON object (the root element's name is not written, as CI's
    /// JSON callbacks have no `Response` wrapper).
    public static func serializeChildren(of tree: XMLTree) -> String {
        var out = ""
        out.reserveCapacity(1024)
        writeObject(tree.children, into: &out)
        return out
    }

    private static func writeObject(_ children: [XMLTree], into out: inout String) {
        out += "{"
        var written = Set<String>()
        var first = true
        for child in children where !written.contains(child.name) {
            written.insert(child.name)
            if !first { out += "," }
            first = false
            writeString(child.name, into: &out)
            out += ":"
            let siblings = children.filter { $0.name == child.name }
            if siblings.count > 1 {
                out += "["
                for (index, sibling) in siblings.enumerated() {
                    if index > 0 { out += "," }
                    writeValue(sibling, into: &out)
                }
                out += "]"
            } else {
                writeValue(child, into: &out)
            }
        }
        out += "}"
    }

    private static func writeValue(_ element: XMLTree, into out: inout String) {
        if element.children.isEmpty {
            writeString(element.text, into: &out)
        } else {
            writeObject(element.children, into: &out)
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
        return XMLTree(rootName, children: elements(from: dictionary))
    }

    private static func elements(from dictionary: [String: Any]) -> [XMLTree] {
        dictionary.keys.sorted().flatMap { key in elements(named: key, value: dictionary[key]!) }
    }

    private static func elements(named name: String, value: Any) -> [XMLTree] {
        switch value {
        case let array as [Any]:
            return array.flatMap { elements(named: name, value: $0) }
        case let object as [String: Any]:
            return [XMLTree(name, children: elements(from: object))]
        case let string as String:
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
}
