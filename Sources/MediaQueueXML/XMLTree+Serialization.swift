extension XMLTree {
    /// The element as a UTF-8 XML string; `declaration` prepends `<?xml version="1.0" encoding="UTF-8"?>`.
    public func xmlString(declaration: Bool = false) -> String {
        String(decoding: xmlBytes(declaration: declaration), as: UTF8.self)
    }

    /// The element as UTF-8 bytes, ready for a message body or an HTTP response.
    ///
    /// Written byte by byte into one array: every finished job's callback body is serialized
    /// here, and appending to a `String` cost several times more in profiles of the dispatch path.
    public func xmlBytes(declaration: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        if declaration { out.append(contentsOf: #"<?xml version="1.0" encoding="UTF-8"?>"#.utf8) }
        write(to: &out)
        return out
    }

    private func write(to out: inout [UInt8]) {
        out.append(UInt8(ascii: "<"))
        out.append(contentsOf: name.utf8)
        if children.isEmpty && text.isEmpty {
            out.append(UInt8(ascii: "/"))
            out.append(UInt8(ascii: ">"))
            return
        }
        out.append(UInt8(ascii: ">"))
        if children.isEmpty {
            Self.escape(text, into: &out)
        } else {
            for child in children { child.write(to: &out) }
        }
        out.append(UInt8(ascii: "<"))
        out.append(UInt8(ascii: "/"))
        out.append(contentsOf: name.utf8)
        out.append(UInt8(ascii: ">"))
    }

    /// Appends `text` with `&`, `<`, `>` and CR escaped, and the characters XML 1.0 cannot carry
    /// (control characters but tab and newline, U+FFFE, U+FFFF: an ffmpeg message or an object
    /// key may hold them) written as U+FFFD, so that every document written here parses again.
    static func escape(_ text: String, into out: inout [UInt8]) {
        // Most texts need neither: copy them whole. 0xEF leads U+FFFE and U+FFFF (and others).
        func special(_ byte: UInt8) -> Bool {
            byte == UInt8(ascii: "&") || byte == UInt8(ascii: "<") || byte == UInt8(ascii: ">") || byte == 0xEF
                || (byte < 0x20 && byte != 0x09 && byte != 0x0A)
        }
        // Scanned in place when the text is contiguous (native strings are): every finished
        // job's callback body passes here, and the view's iterator cost more than the bytes.
        let plain = text.utf8.withContiguousStorageIfAvailable { !$0.contains(where: special) } ?? !text.utf8.contains(where: special)
        if plain {
            out.append(contentsOf: text.utf8)
            return
        }
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x26: out.append(contentsOf: "&amp;".utf8)
            case 0x3C: out.append(contentsOf: "&lt;".utf8)
            case 0x3E: out.append(contentsOf: "&gt;".utf8)
            case 0x0D: out.append(contentsOf: "&#13;".utf8)  // a bare CR would be normalised away by the receiver's parser
            case 0x09, 0x0A: out.append(UInt8(scalar.value))
            case 0..<0x20, 0xFFFE, 0xFFFF: out.append(contentsOf: [0xEF, 0xBF, 0xBD])
            default: out.append(contentsOf: String(scalar).utf8)
            }
        }
    }
}
