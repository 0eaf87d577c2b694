import CairnCore
import Foundation

/// Workload 4: `POST /api/bookmarks/import` of a Netscape bookmark file of `bookmarks` bookmarks
/// in folders of 100. Seconds, compared with a raw insert of as many rows in one transaction.
struct ImportWorkload {
    let bookmarks: Int

    static let folderSize = 100

    /// The file: top-level folders `Folder 0`, `Folder 1`… of up to 100 bookmarks each.
    func file() -> String {
        let folders = stride(from: 0, to: self.bookmarks, by: Self.folderSize).map { start in
            BookmarkTreeNode(
                title: "Folder \(start / Self.folderSize)",
                children: (start..<min(start + Self.folderSize, self.bookmarks)).map {
                    BookmarkTreeNode(title: "Imported \($0)", url: "https://example.org/imported/\($0)", dateAdded: 1_700_000_000_000)
                })
        }
        return NetscapeBookmarkFile.render(folders)
    }

    func run(_ client: BenchHTTP, budget: Budget) async throws -> [Figure] {
        let http = try await client.registerAccount("import")
        let body = Data(self.file().utf8)
        try budget.check()
        let (answer, elapsed) = try await ContinuousClock.timed {
            try await http.expect(200, "POST", "api/bookmarks/import", body: body, contentType: "text/html")
        }
        let result = try answer.decode(Wire.ImportResult.self)
        guard result.bookmarksCreated == self.bookmarks else {
            throw BenchError.unexpected("import created \(result.bookmarksCreated) bookmarks of \(self.bookmarks)")
        }
        return [
            Figure(
                id: "import", workload: "import",
                label: "Netscape file of \(self.bookmarks) bookmarks (\(body.count / 1024) KiB, \(result.foldersCreated) folders)",
                value: elapsed.seconds, unit: "s", counterpart: RawBaseline.insertOneTransactionID)
        ]
    }
}
