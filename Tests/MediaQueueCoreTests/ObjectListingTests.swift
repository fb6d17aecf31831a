import MediaQueueCore
import Testing

@Suite struct ObjectListingTests {
    let keys = ["b/2", "a", "b/1", "c/x/y", "b/3", "d", "é", "B"]

    func page(_ query: ObjectListQuery) throws -> ObjectListing {
        try ObjectListing.page(of: keys, query) { key in ObjectInfo(key: key, size: key.utf8.count, etag: "\"\"", lastModified: Timestamp(seconds: 0)) }
    }

    @Test func keysComeInByteOrderAfterTheMarker() throws {
        #expect(try page(ObjectListQuery()).objects.map(\.key) == ["B", "a", "b/1", "b/2", "b/3", "c/x/y", "d", "é"])
        #expect(try page(ObjectListQuery(marker: "b/2")).objects.map(\.key) == ["b/3", "c/x/y", "d", "é"])
        #expect(try page(ObjectListQuery(prefix: "b/")).objects.map(\.key) == ["b/1", "b/2", "b/3"])
    }

    @Test func aDelimiterRollsUpKeysIntoCommonPrefixesThatCountAsOneEntry() throws {
        let listing = try page(ObjectListQuery(delimiter: "/", maxKeys: 3))
        #expect(listing.objects.map(\.key) == ["B", "a"])
        #expect(listing.commonPrefixes == ["b/"])
        #expect(listing.isTruncated && listing.nextMarker == "b/")
        let next = try page(ObjectListQuery(delimiter: "/", marker: "b/", maxKeys: 3))
        #expect(next.commonPrefixes == ["c/"] && next.objects.map(\.key) == ["d", "é"] && !next.isTruncated)
        let inside = try page(ObjectListQuery(prefix: "c/", delimiter: "/"))
        #expect(inside.commonPrefixes == ["c/x/"] && inside.objects.isEmpty)
    }

    @Test func pagesOfMaxKeysCoverEveryKeyOnce() throws {
        var seen: [String] = []
        var query = ObjectListQuery(maxKeys: 3)
        while true {
            let listing = try page(query)
            seen += listing.objects.map(\.key)
            guard listing.isTruncated, let next = listing.nextMarker else { break }
            query.marker = next
        }
        #expect(seen == ["B", "a", "b/1", "b/2", "b/3", "c/x/y", "d", "é"])
    }

    @Test func httpDatesAreWrittenAndReadBack() {
        let time = Timestamp(seconds: 784_111_777)  // Sun, 06 Nov 1994 08:49:37 GMT
        #expect(HTTPDate.format(time) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == time)
        #expect(HTTPDate.formatISO(time) == "1994-11-06T08:49:37.000Z")
        #expect(HTTPDate.parseISO("1994-11-06T08:49:37.123Z") == time)
    }
}
