import MediaQueueCore
import MediaQueueXML

/// A Snapshot operation's `Operation.Snapshot` (or its template's), `Operation.Output.Object`
/// and `Operation.Output.SpriteObject`, checked against CI's ranges (spec §7.3). Every error
/// names the element it is about.
struct SnapshotOptions: Sendable, Hashable {
    /// How shot times are chosen.
    enum Mode: String, Sendable, Hashable, CaseIterable {
        /// From `Start`, every `TimeInterval` seconds (or every frame without one), up to `Count`.
        case interval = "Interval"
        /// `Count` shots evenly spaced from `Start` to the end.
        case average = "Average"
        /// The key frames from `Start` on, up to `Count`.
        case keyFrame = "KeyFrame"
    }

    /// What the job writes: shots, sprites (shots tiled into grids), or both.
    enum OutMode: String, Sendable, Hashable, CaseIterable {
        case onlySnapshot = "OnlySnapshot"
        case onlySprite = "OnlySprite"
        case snapshotAndSprite = "SnapshotAndSprite"

        var writesShots: Bool { self != .onlySprite }
        var writesSprites: Bool { self != .onlySnapshot }
    }

    /// `SpriteSnapshotConfig`: how shots are tiled into sprite images.
    struct Sprite: Sendable, Hashable {
        var cellWidth: Int?
        var cellHeight: Int?
        var padding = 0
        var margin = 0
        /// An ffmpeg colour (`black`, `#RRGGBB`, `0xRRGGBB@0.5`).
        var color: String
        var columns: Int
        var lines: Int
        /// The `Output.SpriteObject` template.
        var outputObject: String

        var cellsPerSprite: Int { columns * lines }

        /// The largest sprite made, in pixels: each is a whole grid, allocated at once by ffmpeg's
        /// tile filter (Columns and Lines may each be 10,000), for every running job.
        static let maxPixels = 8192 * 8192

        /// The sprite's size for cells of `cell` pixels (those given, else the shots' size).
        func size(cell: (width: Int, height: Int)) -> (width: Int, height: Int) {
            let width = columns * (cellWidth ?? cell.width) + (columns - 1) * padding + 2 * margin
            let height = lines * (cellHeight ?? cell.height) + (lines - 1) * padding + 2 * margin
            return (width, height)
        }
    }

    var mode: Mode = .interval
    var start: Double = 0
    var timeInterval: Double?
    var count: Int = 1
    var width: Int?
    var height: Int?
    /// In Interval mode, fall back to Average when the video is too short for `Count` shots.
    var isCheckCount = false
    var outMode: OutMode = .onlySnapshot
    /// Set when `outMode` writes sprites.
    var sprite: Sprite?
    /// The `Output.Object` template, e.g. `out/snap-${Number}.jpg`.
    var outputObject: String
    /// The template named by `Operation.TemplateId`, if any.
    var template: MediaTemplate?

    static let countRange = 1...10_000

    /// The image format (ffmpeg's file extension) a key's extension names, nil for another
    /// extension; a key without one is a JPEG, CI's default.
    static func imageFormat(extension name: String) -> String? {
        switch name.lowercased() {
        case "", "jpg", "jpeg": "jpg"
        case "png", "webp", "bmp": name.lowercased()
        default: nil
        }
    }

    /// Refuses an output key whose extension names no image format the shots can be written in.
    static func checkImageFormat(_ template: String, element: String) throws(CIError) {
        let file = template.split(separator: "/").last ?? ""
        let name = file.lastIndex(of: ".").map { String(file[file.index(after: $0)...]) } ?? ""
        // `${ext}` is filled in with jpg.
        guard name != "${ext}", imageFormat(extension: name) == nil else { return }
        throw OperationFields.invalid(element, "images are written as jpg, png, webp or bmp, which the key's extension names; '.\(name)' is none of them")
    }
    static let sizeRange = 128...4096
    static let maxTimeInterval = 3600.0

    /// Reads the stored `<Operation>` element; validation at submission and the run both use it.
    init(operation: XMLTree) throws(CIError) {
        guard let output = operation.text("Output", "Object")?.trimmed, !output.isEmpty else {
            throw OperationFields.invalid("Operation.Output.Object", "is required")
        }
        outputObject = output
        try Self.checkImageFormat(output, element: "Operation.Output.Object")
        let resolved = try SystemTemplates.resolve(operation, tag: "Snapshot", container: "Snapshot")
        template = resolved.template
        let snapshot = OperationFields(resolved.element, path: "Operation.Snapshot")

        if let mode = try snapshot.choice("Mode", Mode.allCases.map(\.rawValue)) {
            self.mode = Mode(rawValue: mode)!
        }
        start = try snapshot.number("Start", above: 0, inclusive: true, unit: " seconds") ?? 0
        timeInterval = try snapshot.number("TimeInterval", above: 0, upTo: Self.maxTimeInterval, unit: " seconds")
        count = try snapshot.int("Count", in: Self.countRange) ?? 1
        width = try snapshot.int("Width", in: Self.sizeRange, unit: " pixels")
        height = try snapshot.int("Height", in: Self.sizeRange, unit: " pixels")
        isCheckCount = try snapshot.bool("IsCheckCount") ?? false
        if let outMode = try snapshot.choice("SnapshotOutMode", OutMode.allCases.map(\.rawValue)) {
            self.outMode = OutMode(rawValue: outMode)!
        }
        // Per-shot image processing and black-frame detection are not built; refusing beats ignoring.
        try snapshot.refuse("CIParam", "is not supported yet; choose the image format by the output extension (.jpg or .png)")
        try snapshot.refuse("IsCheckBlack", unless: { $0.lowercased() == "false" })

        if outMode.writesShots, count > 1, !outputObject.contains(OutputObjectTemplate.number) {
            throw OperationFields.invalid("Operation.Output.Object", "must contain ${Number} when Count is more than 1")
        }
        if outMode.writesSprites {
            sprite = try Self.sprite(snapshot.child("SpriteSnapshotConfig"), operation: operation, count: count)
        }
    }

    private static func sprite(_ config: OperationFields, operation: XMLTree, count: Int) throws(CIError) -> Sprite {
        guard let object = operation.text("Output", "SpriteObject")?.trimmed, !object.isEmpty else {
            throw OperationFields.invalid("Operation.Output.SpriteObject", "is required when SnapshotOutMode writes sprites")
        }
        if object.split(separator: "/").contains("..") || object.hasPrefix("/") {
            throw OperationFields.invalid("Operation.Output.SpriteObject", "must be a key inside the bucket")
        }
        try checkImageFormat(object, element: "Operation.Output.SpriteObject")
        guard let color = config.string("Color") else { throw config.invalid("Color", "is required") }
        // Goes into an ffmpeg filter graph: only what colour syntax needs, nothing that separates filters.
        guard color.utf8.allSatisfy({ $0.isASCIILetterOrDigit || $0 == UInt8(ascii: "#") || $0 == UInt8(ascii: "@") || $0 == UInt8(ascii: ".") }) else {
            throw config.invalid("Color", "'\(color)' is not a colour (a name such as white, #RRGGBB or 0xRRGGBB, optionally @alpha)")
        }
        guard let columns = try config.int("Columns", in: 1...10_000) else { throw config.invalid("Columns", "is required") }
        guard let lines = try config.int("Lines", in: 1...10_000) else { throw config.invalid("Lines", "is required") }
        let sprite = Sprite(
            cellWidth: try config.int("CellWidth", in: 8...4096, unit: " pixels"),
            cellHeight: try config.int("CellHeight", in: 8...4096, unit: " pixels"),
            padding: try config.int("Padding", in: 0...1024, unit: " pixels") ?? 0,
            margin: try config.int("Margin", in: 0...1024, unit: " pixels") ?? 0,
            color: color, columns: columns, lines: lines, outputObject: object
        )
        if count > sprite.cellsPerSprite, !object.contains(OutputObjectTemplate.number) {
            throw OperationFields.invalid(
                "Operation.Output.SpriteObject", "must contain ${Number}: Count \(count) needs more than one \(columns)x\(lines) sprite"
            )
        }
        return sprite
    }
}

extension UInt8 {
    var isASCIILetterOrDigit: Bool {
        (self >= 48 && self <= 57) || (self >= 65 && self <= 90) || (self >= 97 && self <= 122)
    }
}

extension String {
    var trimmed: String {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return String(text)
    }
}
