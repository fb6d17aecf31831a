extension XMLTree {
    /// The element as a UTF-8 XML string; `declaration` prepends `<?xml version="1.0" encoding="UTF-8"?>`.
    public func xmlString(declaration: Bool = false) -> String {
        var out = declaration ? "<?xml version=\"1.0\" encoding=\"UTF-8\"?>" : ""
        write(to: &out)
        return out
    }

    /// The element as UTF-8 bytes, ready for a message body or an HTTP response.
    public func xmlBytes(declaration: Bool = false) -> [UInt8] {
        Array(xmlString(declaration: declaration).utf8)
    }

    private func write(to out: inout String) {
        out += "<"
        out += name
        if children.isEmpty && text.isEmpty {
            out += "/>"
            return
        }
        out += ">"
        if children.isEmpty {
            Self.escape(text, into: &out)
        } else {
            for child in children { child.write(to: &out) }
        }
        out += "</"
        out += name
        out += ">"
    }

    static func escape(_ text: String, into out: inout String) {
        // Fast path: most values (ids, numbers, names) need no escaping.
        if !text.utf8.contains(where: { $0 == UInt8(ascii: "&") || $0 == UInt8(ascii: "<") || $0 == UInt8(ascii: ">") || $0 == 0x0D }) {
            out += text
            return
        }
        for character in text.unicodeScalars {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\r": out += "&#13;"  // a bare CR would be normalised away by the receiver's parser
            default: out.unicodeScalars.append(character)
            }
        }
    }
}
