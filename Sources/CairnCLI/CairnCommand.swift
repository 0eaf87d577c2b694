import ArgumentParser

/// The `cairn` executable: the server (`cairn serve`) and, later, the client commands.
@main
struct CairnCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn",
        abstract: "Cairn: self-hosted real-time, offline-first sync for bookmarks and app data.",
        subcommands: [ServeCommand.self]
    )
}
