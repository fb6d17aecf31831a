import MediaQueueXML

/// CI's `<MediaResult>` (spec §4.5): `OutputFile` with the bucket, region, one `ObjectName` per
/// written file and one `Md5Info` per file; snapshot sprites in `SpriteOutputFile`, same shape.
enum MediaResult {
    static func xml(_ objects: [PublishedObject], sprites: [PublishedObject] = [], bucket: String, region: String) -> XMLTree {
        var outputFile = files("OutputFile", objects, bucket: bucket, region: region)
        if !sprites.isEmpty {
            outputFile.children.append(files("SpriteOutputFile", sprites, bucket: bucket, region: region))
        }
        return XMLTree("MediaResult", children: [outputFile])
    }

    private static func files(_ name: String, _ objects: [PublishedObject], bucket: String, region: String) -> XMLTree {
        var element = XMLTree(name, children: [XMLTree("Bucket", text: bucket), XMLTree("Region", text: region)])
        element.children += objects.map { XMLTree("ObjectName", text: $0.object) }
        element.children += objects.map {
            XMLTree("Md5Info", children: [XMLTree("Md5", text: $0.md5), XMLTree("ObjectName", text: $0.object)])
        }
        return element
    }
}
