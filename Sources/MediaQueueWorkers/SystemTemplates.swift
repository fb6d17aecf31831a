import MediaQueueXML
import MediaQueueCore

/// The built-in (CI "Official") templates. Ids are fixed constants, so clients can hard-code them
/// as they do CI's system template ids.
public enum SystemTemplates {
    public static let all: [MediaTemplate] = [
        mp4("t0cba0cccc978d16d1318ebe6ecd6bf14c", "MP4-H264-SD", height: 480, videoKbps: 1000, audioKbps: 128),
        mp4("t0787a87787bb6b8943029dec34ef0db5d", "MP4-H264-HD", height: 720, videoKbps: 2500, audioKbps: 128),
        mp4("t03b8b40ea0d2a6877356ba92ea7482220", "MP4-H264-FHD", height: 1080, videoKbps: 5000, audioKbps: 192),
        MediaTemplate(
            id: "t05e9ec74792541076b021207f90338c2d", name: "HLS-H264-HD", tag: "Transcode",
            body: element("Transcode", [
                element("Container", [leaf("Format", "hls")]),
                element("Video", [
                    leaf("Codec", "H.264"), leaf("Height", "720"), leaf("Bitrate", "2500"), leaf("Profile", "high"),
                    leaf("HlsTsTime", "10"),
                ]),
                element("Audio", [leaf("Codec", "aac"), leaf("Samplerate", "44100"), leaf("Bitrate", "128"), leaf("Channels", "2")]),
            ]),
            summary: "HLS (m3u8 + 10 s ts segments), H.264 720p 2500 kbps, AAC 128 kbps"
        ),
        MediaTemplate(
            id: "t0337502753457eef9201a3a7f7ca84226", name: "MP3-128K", tag: "Transcode",
            body: element("Transcode", [
                element("Container", [leaf("Format", "mp3")]),
                element("Audio", [leaf("Codec", "mp3"), leaf("Samplerate", "44100"), leaf("Bitrate", "128"), leaf("Channels", "2")]),
            ]),
            summary: "MP3 audio, 44.1 kHz stereo, 128 kbps"
        ),
        MediaTemplate(
            id: "t02e53d892404d2edbdc3961bc552ed5f4", name: "GIF-320-10FPS", tag: "Animation",
            body: element("Animation", [
                element("Container", [leaf("Format", "gif")]),
                element("Video", [leaf("Codec", "gif"), leaf("Width", "320"), leaf("Fps", "10")]),
            ]),
            summary: "GIF animation, 320 px wide, 10 fps"
        ),
        MediaTemplate(
            id: "t082479b19b88a3d087ca16cbe366730a1", name: "JPG-Snapshot-10s", tag: "Snapshot",
            body: element("Snapshot", [leaf("Mode", "Interval"), leaf("Start", "0"), leaf("TimeInterval", "10"), leaf("Count", "100")]),
            summary: "JPEG shot every 10 s from the start, up to 100 (Output.Object needs ${Number})"
        ),
        MediaTemplate(
            id: "t088569dd5bff05cf051c6daef0a25640a", name: "JPG-Cover", tag: "Snapshot",
            body: element("Snapshot", [leaf("Mode", "Interval"), leaf("Start", "0"), leaf("Count", "1")]),
            summary: "one JPEG of the first frame"
        ),
    ]

    /// The template with `id`, if it is a system template.
    public static func template(id: String) -> MediaTemplate? {
        all.first { $0.id == id }
    }

    /// Template names by id, for `CIFormatting.templateNames` (the `TemplateName` echo).
    public static var names: [String: String] {
        Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0.name) })
    }

    /// The element an operation runs with: the built-in template's when `Operation.TemplateId`
    /// names one (it wins over inline parameters), else the inline `container` element (a custom
    /// template's parameters were put there at submission).
    ///
    /// Throws `InvalidArgument` naming `Operation.TemplateId` when the id is unknown or belongs to
    /// another job type.
    static func resolve(_ operation: XMLTree, tag: String, container: String) throws(CIError) -> (element: XMLTree?, template: MediaTemplate?) {
        guard let id = operation.text("TemplateId")?.trimmed, !id.isEmpty else {
            return (operation[container], nil)
        }
        guard let template = template(id: id) else {
            // A bucket's own template was resolved at submission (`TemplateResolver`): its
            // parameters are the container, its name beside the id.
            if operation["TemplateName"] != nil, let element = operation[container] { return (element, nil) }
            throw OperationFields.invalid("Operation.TemplateId", "'\(id)' is not a template here (GET /template or `mediaqueue templates list` shows them)")
        }
        guard template.tag == tag else {
            throw OperationFields.invalid("Operation.TemplateId", "'\(id)' (\(template.name)) is a \(template.tag) template, not \(tag)")
        }
        return (template.body, template)
    }

    private static func mp4(_ id: String, _ name: String, height: Int, videoKbps: Int, audioKbps: Int) -> MediaTemplate {
        MediaTemplate(
            id: id, name: name, tag: "Transcode",
            body: element("Transcode", [
                element("Container", [leaf("Format", "mp4")]),
                element("Video", [
                    leaf("Codec", "H.264"), leaf("Height", String(height)), leaf("Bitrate", String(videoKbps)), leaf("Profile", "high"),
                    leaf("Preset", "medium"),
                ]),
                element("Audio", [
                    leaf("Codec", "aac"), leaf("Samplerate", "44100"), leaf("Bitrate", String(audioKbps)), leaf("Channels", "2"),
                ]),
            ]),
            summary: "MP4, H.264 \(height)p \(videoKbps) kbps, AAC \(audioKbps) kbps"
        )
    }

    private static func element(_ name: String, _ children: [XMLTree]) -> XMLTree { XMLTree(name, children: children) }
    private static func leaf(_ name: String, _ text: String) -> XMLTree { XMLTree(name, text: text) }
}
