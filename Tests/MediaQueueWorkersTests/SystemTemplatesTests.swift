import MediaQueueCore
import MediaQueueXML
import Testing
@testable import MediaQueueWorkers

@Suite("SystemTemplates")
struct SystemTemplatesTests {
    @Test("CI-style ids (t + hex), unique ids and names, the required kinds present")
    func catalogue() {
        let all = SystemTemplates.all
        #expect(Set(all.map(\.id)).count == all.count)
        #expect(Set(all.map(\.name)).count == all.count)
        for template in all {
            #expect(template.id.hasPrefix("t"))
            #expect(template.id.dropFirst().allSatisfy { $0.isHexDigit && !$0.isUppercase })
            #expect(template.body.name == (template.tag == "Transcode" ? "Transcode" : template.tag))
        }
        #expect(all.filter { $0.tag == "Transcode" && $0.body.text("Container", "Format") == "mp4" }.count >= 3)
        #expect(all.contains { $0.body.text("Container", "Format") == "hls" })
        #expect(all.contains { $0.body.text("Container", "Format") == "mp3" })
        #expect(all.contains { $0.tag == "Animation" && $0.body.text("Container", "Format") == "gif" })
        #expect(all.contains { $0.tag == "Snapshot" })
        #expect(SystemTemplates.names.count == all.count)
    }

    @Test("every template passes its worker's validation when named by TemplateId")
    func valid() {
        let workers: [String: any MediaWorker] = [
            "Transcode": TranscodeWorker(logger: quietLogger),
            "Animation": AnimationWorker(logger: quietLogger),
            "Snapshot": SnapshotWorker(logger: quietLogger),
        ]
        for template in SystemTemplates.all {
            let worker = workers[template.tag]!
            let xml = "<TemplateId>\(template.id)</TemplateId><Output><Object>out/${Number}.${ext}</Object></Output>"
            let error = validationError(tag: template.tag, operationXML: xml, worker: worker)
            #expect(error == nil, "\(template.name): \(error?.message ?? "")")
        }
    }

    @Test("every worker takes Input.Url as its input and refuses a bad one naming Input.Url")
    func inputURL() {
        let workers: [any MediaWorker] = [
            TranscodeWorker(logger: quietLogger), AnimationWorker(logger: quietLogger), SnapshotWorker(logger: quietLogger),
            ConcatWorker(logger: quietLogger), SegmentWorker(logger: quietLogger), MediaInfoWorker(logger: quietLogger),
        ]
        for worker in workers {
            for url in ["ftp://example.com/a.mp4", "https:///a.mp4", "https://example.com/a b.mp4"] {
                let body = "<Request><Tag>\(worker.tag)</Tag><Input><Url>\(url)</Url></Input><Operation><Output><Object>o</Object></Output></Operation></Request>"
                do {
                    _ = try CreateMediaJobsRequest.parse(Array(body.utf8), validate: worker.validate)
                    Issue.record("\(worker.tag) accepted \(url)")
                } catch {
                    #expect(error.element == "Input.Url", "\(worker.tag)")
                }
            }
        }
        // A good URL gets past the input check: whatever is refused next is not Input.Url.
        for worker in workers {
            let error = validationError(tag: worker.tag, input: nil, operationXML: "<Output><Object>o.mp4</Object></Output>", worker: worker)
            #expect(error?.element == "Input.Object", "\(worker.tag)")
            let body = "<Request><Tag>\(worker.tag)</Tag><Input><Url>https://media.example.com/a.mp4</Url></Input><Operation><Output><Object>o.mp4</Object></Output></Operation></Request>"
            do {
                _ = try CreateMediaJobsRequest.parse(Array(body.utf8), validate: worker.validate)
            } catch {
                #expect(error.element != "Input.Url" && error.element != "Input.Object", "\(worker.tag): \(error.message)")
            }
        }
    }
}
