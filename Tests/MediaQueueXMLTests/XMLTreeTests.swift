import MediaQueueXML
import Testing

@Suite struct XMLTreeTests {
    @Test func parsesNestedElementsAndKeepsLeafTextExactly() throws {
        let tree = try XMLDocumentParser.parse("""
            <?xml version="1.0"?>
            <Request>
              <Tag>Snapshot</Tag>
              <Operation><UserData>  spaced &amp; &lt;kept&gt;  </UserData><Output><Object>a/${Number}.jpg</Object></Output></Operation>
            </Request>
            """)
        #expect(tree.name == "Request")
        #expect(tree.text("Tag") == "Snapshot")
        #expect(tree.text("Operation", "UserData") == "  spaced & <kept>  ")
        #expect(tree.text("Operation", "Output", "Object") == "a/${Number}.jpg")
        #expect(tree.text("Operation", "Missing") == nil)
    }

    @Test func cdataIsText() throws {
        let tree = try XMLDocumentParser.parse("<A><B><![CDATA[x<y]]></B></A>")
        #expect(tree.text("B") == "x<y")
    }

    @Test func textCountsOnlyInLeavesAndItsPiecesJoin() throws {
        let tree = try XMLDocumentParser.parse(
            "<A>text<B>x<!-- a comment -->y<?pi z?>z</B>tail<C><![CDATA[1]]>2&amp;&#x33;</C>\n  <D>  </D></A>"
        )
        #expect(tree.text == "")
        #expect(tree.children.map(\.name) == ["B", "C", "D"])
        #expect(tree.text("B") == "xyz")
        #expect(tree.text("C") == "12&3")
        #expect(tree.text("D") == "  ")
    }

    /// libxml2's blank-text heuristics once dropped whitespace next to a CDATA section, a comment
    /// or a processing instruction; a leaf's text is now all of its characters.
    @Test func aLeafKeepsItsWhitespaceNextToCDATAAndComments() throws {
        let tree = try XMLDocumentParser.parse("<A><B> <![CDATA[x]]> </B><C> <!--c-->x</C><D> <?pi z?> </D></A>")
        #expect(tree.text("B") == " x ")
        #expect(tree.text("C") == " x")
        #expect(tree.text("D") == "  ")
    }

    @Test func elementsAreNamedWithoutTheirDeclaredPrefixAndAttributesAreIgnored() throws {
        let tree = try XMLDocumentParser.parse(#"<ci:Request xmlns:ci="urn:x"><ci:Tag kind="1">Snapshot</ci:Tag></ci:Request>"#)
        #expect(tree == XMLTree("Request", children: [XMLTree("Tag", text: "Snapshot")]))
        // A prefix never declared stays part of the name.
        #expect(try XMLDocumentParser.parse("<ci:Request><Tag/></ci:Request>").name == "ci:Request")
    }

    @Test func anUndeclaredEntityIsAnError() {
        do {
            _ = try XMLDocumentParser.parse("<Request><Tag>&secret;</Tag></Request>")
            Issue.record("accepted")
        } catch {
            #expect(error.reason.contains("secret"))
        }
    }

    @Test func repeatedElementsStayInOrder() throws {
        let tree = try XMLDocumentParser.parse("<R><Op><N>1</N></Op><Op><N>2</N></Op><Other/><Op><N>3</N></Op></R>")
        #expect(tree.all("Op").compactMap { $0.text("N") } == ["1", "2", "3"])
    }

    @Test(arguments: ["", "not xml", "<Request><Tag>x</Request>", "<a></b>", "<?xml version=\"1.0\"?>"])
    func malformedInputIsAnErrorNotACrash(_ input: String) {
        #expect(throws: XMLParseError.self) { try XMLDocumentParser.parse(input) }
    }

    @Test func errorSaysWhereAndWhy() {
        do {
            _ = try XMLDocumentParser.parse("<Request>\n<Tag>x</Tga>\n</Request>")
            Issue.record("expected an error")
        } catch {
            #expect(error.line == 2)
            #expect(error.description.contains("Tag"))
        }
    }

    @Test func serializesAndRoundTrips() throws {
        let tree = XMLTree("Response", children: [
            XMLTree("Message", text: ""),
            XMLTree("UserData", text: "a & b <c> \"d\""),
            XMLTree("List", children: [XMLTree("Item", text: "1"), XMLTree("Item", text: "2")]),
        ])
        let string = tree.xmlString()
        #expect(string == "<Response><Message/><UserData>a &amp; b &lt;c&gt; \"d\"</UserData><List><Item>1</Item><Item>2</Item></List></Response>")
        #expect(try XMLDocumentParser.parse(string) == tree)
        #expect(try XMLDocumentParser.parse(tree.xmlBytes(declaration: true)) == tree)
    }

    @Test func unicodeSurvivesARoundTrip() throws {
        let tree = XMLTree("R", children: [XMLTree("Name", text: "队列-1 ✓")])
        #expect(try XMLDocumentParser.parse(tree.xmlString()) == tree)
    }

    @Test func charactersXMLCannotCarryAreWrittenAsReplacementsSoTheDocumentParsesAgain() throws {
        let text = "ffmpeg: \u{8}bad\u{B}frame\u{FFFF}\u{FFFE} <&> tab\tline\nend \u{FF0C}\u{1F600}"
        let written = XMLTree("Message", text: text).xmlBytes()
        let read = try XMLDocumentParser.parse(written)
        #expect(read.text == "ffmpeg: \u{FFFD}bad\u{FFFD}frame\u{FFFD}\u{FFFD} <&> tab\tline\nend \u{FF0C}\u{1F600}")
        let plain = "nothing to escape, even CJK \u{FF0C}"
        #expect(try XMLDocumentParser.parse(XMLTree("M", text: plain).xmlBytes()).text == plain)
    }
}
