import Foundation
import MediaQueueCore
import MediaQueueXML

/// An Animation operation's `Operation.Animation` (or its template's): `Container.Format` gif or
/// webp, `Video` (`Codec`, `Width`/`Height`, `Fps`, the `Animate*` frame options, `Quality`) and
/// `TimeInterval`, checked against CI's ranges.
///
/// Which frames are taken: only key frames (`AnimateOnlyKeepKeyFrame`), else one every
/// `AnimateTimeIntervalOfFrame` seconds, else `AnimateFramesPerSecond` per second, else `Fps` per
/// second, else every frame. `Fps` is also the rate the animation plays at: when frames are
/// taken more sparsely than that, the animation plays faster than the video (a time-lapse).
struct AnimationOptions: Sendable, Hashable {
    enum Format: String, Sendable, Hashable, CaseIterable {
        case gif, webp
    }

    var format: Format
    var width: Int?
    var height: Int?
    var fps: Double?
    var onlyKeyFrames = false
    var intervalOfFrame: Double?
    var framesPerSecond: Double?
    /// 1...100; GIF maps it to the palette size, WebP to its encoder quality.
    var quality: Double?
    var start: Double = 0
    var duration: Double?
    var template: MediaTemplate?

    init(operation: XMLTree) throws(CIError) {
        let resolved = try SystemTemplates.resolve(operation, tag: "Animation", container: "Animation")
        template = resolved.template
        let fields = OperationFields(resolved.element, path: "Operation.Animation")
        let container = fields.child("Container")
        guard let format = try container.choice("Format", Format.allCases.map(\.rawValue)) else {
            throw container.invalid("Format", "is required (gif or webp)")
        }
        self.format = Format(rawValue: format)!
        let video = fields.child("Video")
        if let codec = try video.choice("Codec", Format.allCases.map(\.rawValue)), codec != format {
            throw video.invalid("Codec", "\(codec) cannot go in a \(format) container")
        }
        width = try video.int("Width", in: TranscodeOptions.sizeRange, unit: " pixels")
        height = try video.int("Height", in: TranscodeOptions.sizeRange, unit: " pixels")
        fps = try video.number("Fps", above: 0, upTo: 60, unit: " frames per second")
        onlyKeyFrames = try video.bool("AnimateOnlyKeepKeyFrame") ?? false
        intervalOfFrame = try video.number("AnimateTimeIntervalOfFrame", above: 0, upTo: 3600, unit: " seconds")
        framesPerSecond = try video.number("AnimateFramesPerSecond", above: 0, upTo: 60, unit: " frames per second")
        quality = try video.number("Quality", above: 0, upTo: 100)
        let interval = fields.child("TimeInterval")
        start = try interval.number("Start", above: 0, inclusive: true, unit: " seconds") ?? 0
        duration = try interval.number("Duration", above: 0, unit: " seconds")
    }

    /// The frames-per-second at which frames are taken from the video, when it is a fixed rate.
    var samplingRate: Double? {
        if onlyKeyFrames { return nil }
        if let intervalOfFrame { return 1 / intervalOfFrame }
        return framesPerSecond ?? fps
    }

    /// The filter graph: frame selection, playback rate, size, and for GIF the palette made for
    /// this very clip by `paletteGraph` (GIF holds 256 colours at most), input 1.
    func filterGraph() -> String {
        switch format {
        case .gif: framesGraph() + "[frames];[frames][1:v]paletteuse[out]"
        case .webp: framesGraph() + "[out]"
        }
    }

    /// The graph of a first pass over the same frames that makes a GIF's palette (`[out]`, one
    /// image at the clip's end) and passes the frames on to `[progress]`, an output whose time
    /// shows how far the pass is. In one pass with the animation, ffmpeg held every frame until
    /// the palette was made: about a megabyte a frame at 640x360, gigabytes for a long clip.
    func paletteGraph() -> String {
        let colours = quality.map { max(4, min(256, Int(($0 / 100 * 256).rounded()))) } ?? 256
        return framesGraph() + ",split[forpalette][progress];[forpalette]palettegen=max_colors=\(colours)[out]"
    }

    /// Frame selection, playback rate and size.
    private func framesGraph() -> String {
        var chain: [String] = []
        if let rate = samplingRate { chain.append("fps=\(String(format: "%.6f", rate))") }
        if let fps, onlyKeyFrames || intervalOfFrame != nil || framesPerSecond != nil {
            // Taken frames play back at Fps, one after the other (fps then only sets the rate the
            // encoder sees: every frame already sits in its own slot).
            let rate = String(format: "%.6f", fps)
            // A fine time base first: after `fps` it is 1/rate, too coarse for the new times.
            chain.append("settb=AVTB")
            chain.append("setpts=N/(\(rate)*TB)")
            chain.append("fps=\(rate)")
        }
        if width != nil || height != nil {
            chain.append("scale=\(width ?? -1):\(height ?? -1):flags=lanczos")
        }
        return "[0:v]" + (chain.isEmpty ? "null" : chain.joined(separator: ","))
    }
}
