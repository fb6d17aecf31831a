import Foundation
import MediaQueueXML
import Testing

/// Documents built to attack an XML parser are refused, quickly and with a clear reason.
@Suite struct HostileXMLTests {
    /// An entity that would read a local file (XXE).
    static let externalEntity = """
        <?xml version="1.0"?>
        <!DOCTYPE Request [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
        <Request><Tag>MediaInfo</Tag><Input><Object>a.mp4</Object></Input><Operation><UserData>&secret;</UserData></Operation></Request>
        """

    /// Entities that expand to 10^9 copies of "lol" ("billion laughs").
    static let billionLaughs: String = {
        var declarations = #"<!ENTITY lol0 "lol">"#
        for level in 1...9 {
            declarations += "<!ENTITY lol\(level) \"" + String(repeating: "&lol\(level - 1);", count: 10) + "\">"
        }
        return "<?xml version=\"1.0\"?><!DOCTYPE Request [\(declarations)]><Request><Operation><UserData>&lol9;</UserData></Operation></Request>"
    }()

    /// A document type loaded from the network.
    static func externalDTD(_ url: String) -> String {
        "<?xml version=\"1.0\"?><!DOCTYPE Request SYSTEM \"\(url)\"><Request><Tag>MediaInfo</Tag></Request>"
    }

    static func nested(_ depth: Int) -> String {
        String(repeating: "<a>", count: depth) + "x" + String(repeating: "</a>", count: depth)
    }

    @Test(arguments: [
        (externalEntity, "DOCTYPE declarations are not accepted"),
        (billionLaughs, "DOCTYPE declarations are not accepted"),
        (externalDTD("http://127.0.0.1:9/evil.dtd"), "DOCTYPE declarations are not accepted"),
        ("<Request><!ENTITY x \"y\"></Request>", "ENTITY declarations are not accepted"),
    ])
    func declarationsAreRefusedBeforeParsing(_ document: String, _ reason: String) {
        do {
            _ = try XMLDocumentParser.parse(document)
            Issue.record("accepted")
        } catch {
            #expect(error.reason == reason)
        }
    }

    @Test func nestingIsBounded() throws {
        #expect(try XMLDocumentParser.parse(Self.nested(XMLDocumentParser.maxDepth)).name == "a")
        // One level too deep, and far deeper than libxml2's own bound: refused, not a crash.
        for depth in [XMLDocumentParser.maxDepth + 1, 100_000] {
            do {
                _ = try XMLDocumentParser.parse(Self.nested(depth))
                Issue.record("a document nested \(depth) deep was accepted")
            } catch {
                #expect(error.description == "malformed XML at line 1: elements nest deeper than 32 levels")
            }
        }
    }

    @Test func theWordsInTextAreNotDeclarations() throws {
        let tree = try XMLDocumentParser.parse("<Request><UserData>&lt;!DOCTYPE is just text here</UserData></Request>")
        #expect(tree.text("UserData") == "<!DOCTYPE is just text here")
    }
}
