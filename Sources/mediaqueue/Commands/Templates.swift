import ArgumentParser
import Foundation
import Logging
import MediaQueueApp
import MediaQueueCore
import MediaQueueXML

struct Templates: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the built-in media templates.", subcommands: [List.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the templates Operation.TemplateId may name.")
        @Flag(name: .long, help: "Print CI's DescribeMediaTemplates XML instead of a table.") var xml = false

        func run() {
            if xml {
                print(MediaQueueApplication.templateList.xmlString())
                return
            }
            for row in MediaQueueApplication.templateRows {
                print([row.id, row.tag.padding(toLength: 9, withPad: " ", startingAt: 0), row.name.padding(toLength: 16, withPad: " ", startingAt: 0), row.summary].joined(separator: "  "))
            }
        }
    }
}
