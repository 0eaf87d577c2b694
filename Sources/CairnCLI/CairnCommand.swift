import ArgumentParser

/// The `cairn` executable: the server (`cairn serve`) and the offline-first client commands.
@main
struct CairnCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn",
        abstract: "Cairn: self-hosted real-time, offline-first sync for bookmarks and app data.",
        subcommands: [
            ServeCommand.self, LoginCommand.self, AddCommand.self, ListCommand.self, MoveCommand.self, RemoveCommand.self,
            SearchCommand.self, SyncCommand.self, StatusCommand.self, ImportCommand.self, ExportCommand.self, KeysCommand.self,
        ]
    )
}
