import Foundation
import Testing

@testable import CairnCore
import CairnTestFixtures

/// Parsing and rendering the Netscape bookmark HTML format that Firefox and Chrome export.
@Suite("Netscape bookmark file")
struct NetscapeBookmarkFileTests {
    typealias Node = BookmarkTreeNode

    /// A bookmark with dates given in file seconds.
    static func bookmark(
        _ title: String, _ url: String, added: Int64? = nil, modified: Int64? = nil, tags: [String] = [],
        notes: String? = nil, icon: String? = nil
    ) -> Node {
        Node(
            title: title, url: url, dateAdded: added.map { $0 * 1000 }, dateModified: modified.map { $0 * 1000 },
            tags: tags, notes: notes, icon: icon)
    }

    /// A folder with dates given in file seconds.
    static func folder(
        _ title: String, added: Int64? = nil, modified: Int64? = nil, notes: String? = nil,
        hint: Node.RootHint? = nil, _ children: [Node]
    ) -> Node {
        Node(
            title: title, children: children, dateAdded: added.map { $0 * 1000 },
            dateModified: modified.map { $0 * 1000 }, notes: notes, rootHint: hint)
    }

    /// Every node of a tree, depth first, in file order.
    static func flatten(_ nodes: [Node]) -> [Node] {
        var out: [Node] = []
        var stack = Array(nodes.reversed())
        while let node = stack.popLast() {
            out.append(node)
            stack.append(contentsOf: node.children.reversed())
        }
        return out
    }

    // MARK: Fixtures

    @Test func firefoxExportParsesIntoExpectedTree() throws {
        let nodes = try NetscapeBookmarkFile.parse(BookmarkFileFixtures.firefox)
        let expected: [Node] = [
            Self.folder(
                "Mozilla Firefox", added: 1_699_000_000, modified: 1_699_000_100,
                [
                    Self.bookmark(
                        "Get Help", "https://support.mozilla.org/products/firefox", added: 1_699_000_010,
                        modified: 1_699_000_020, icon: BookmarkFileFixtures.pngIcon),
                    Self.bookmark(
                        "About Us", "https://www.mozilla.org/en-US/about/", added: 1_699_000_030, modified: 1_699_000_030,
                        icon: "https://www.mozilla.org/media/img/favicons/mozilla/favicon.d25d81d39065.ico"),
                ]),
            Self.bookmark(
                "Search & Find", "https://duckduckgo.com/?q=swift+6&ia=web", added: 1_700_000_000, modified: 1_700_000_500,
                tags: ["search", "tools"], notes: "My favourite search engine \u{2014} <fast> & private"),
            Self.folder(
                "Bookmarks Toolbar", added: 1_690_000_000, modified: 1_700_000_900,
                notes: "Add bookmarks to this folder to see them displayed on the Bookmarks Toolbar", hint: .toolbar,
                [
                    Self.bookmark(
                        "Getting Started", "https://www.mozilla.org/en-US/firefox/central/", added: 1_690_000_010,
                        modified: 1_690_000_010),
                    Self.folder(
                        "Dev", added: 1_695_000_000, modified: 1_696_000_000,
                        [
                            Self.bookmark(
                                "MDN Web Docs", "https://developer.mozilla.org/en-US/", added: 1_695_000_100,
                                modified: 1_695_000_100),
                            Self.folder(
                                "Swift", added: 1_695_500_000, modified: 1_695_600_000,
                                [
                                    Self.bookmark(
                                        "Swift.org", "https://www.swift.org/", added: 1_695_500_100, modified: 1_695_500_100),
                                    Self.bookmark(
                                        "Swift Forums", "https://forums.swift.org/", added: 1_695_500_200,
                                        modified: 1_695_500_300, tags: ["swift", "community"]),
                                ]),
                        ]),
                    Self.bookmark(
                        "Say Hello", "javascript:(function(){alert(%22Hello%20from%20Cairn%22);})();", added: 1_696_000_100,
                        modified: 1_696_000_100),
                ]),
            Self.folder(
                "Other Bookmarks", added: 1_690_000_000, modified: 1_700_000_950, hint: .other,
                [
                    Self.bookmark(
                        "Hacker News", "https://news.ycombinator.com/", added: 1_700_000_600, modified: 1_700_000_600)
                ]),
        ]
        #expect(nodes == expected)

        // Spot checks that explain a failure of the whole-tree comparison above.
        #expect(nodes.map(\.title) == ["Mozilla Firefox", "Search & Find", "Bookmarks Toolbar", "Other Bookmarks"])
        #expect(nodes.map(\.rootHint) == [nil, nil, .toolbar, .other])
        #expect(nodes.reduce(0) { $0 + $1.bookmarkCount } == 9)
        let search = try #require(nodes.first { $0.title == "Search & Find" })
        #expect(search.url == "https://duckduckgo.com/?q=swift+6&ia=web")
        #expect(search.dateAdded == 1_700_000_000_000)
        #expect(search.dateModified == 1_700_000_500_000)
        #expect(search.tags == ["search", "tools"])
        #expect(search.notes == "My favourite search engine \u{2014} <fast> & private")
        #expect(search.isFolder == false)
    }

    @Test func chromeExportParsesIntoExpectedTree() throws {
        let nodes = try NetscapeBookmarkFile.parse(BookmarkFileFixtures.chrome)
        let expected: [Node] = [
            Self.folder(
                "Bookmarks bar", added: 1_699_990_000, modified: 1_700_001_000, hint: .toolbar,
                [
                    Self.bookmark("GitHub", "https://github.com/", added: 1_699_990_100, icon: BookmarkFileFixtures.pngIcon),
                    Self.folder(
                        "Work", added: 1_699_990_200, modified: 1_699_990_900,
                        [
                            Self.bookmark(
                                "Jira \u{2013} Sprint board", "https://example.atlassian.net/jira/software/projects/CAIRN/boards/1",
                                added: 1_699_990_300),
                            Self.folder(
                                "Docs", added: 1_699_990_400, modified: 1_699_990_500,
                                [
                                    Self.bookmark(
                                        "The Swift Programming Language", "https://docs.swift.org/swift-book/",
                                        added: 1_699_990_450)
                                ]),
                            Self.folder("Archive", added: 1_699_990_600, modified: 0, []),
                        ]),
                    Self.bookmark(
                        "Rick Astley - Never Gonna Give You Up (Official Music Video) '87",
                        "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s", added: 1_699_990_700),
                ]),
            Self.folder(
                "Other bookmarks", added: 1_699_980_000, modified: 1_700_002_000, hint: .other,
                [
                    Self.bookmark(
                        "Wikipedia, the free encyclopedia", "https://en.wikipedia.org/wiki/Main_Page", added: 1_699_980_100),
                    Self.bookmark("Café & Bäckerei 🥐", "https://example.de/caf%C3%A9?x=1&y=2", added: 1_699_980_200),
                ]),
            Self.folder(
                "Mobile bookmarks", added: 1_699_970_000, modified: 1_699_970_100, hint: .mobile,
                [Self.bookmark("Google Maps", "https://maps.google.com/", added: 1_699_970_050)]),
        ]
        #expect(nodes == expected)

        #expect(nodes.map(\.title) == ["Bookmarks bar", "Other bookmarks", "Mobile bookmarks"])
        #expect(nodes.map(\.rootHint) == [.toolbar, .other, .mobile])
        let bar = try #require(nodes.first)
        #expect(bar.children.map(\.title).first == "GitHub")
        #expect(bar.children.first?.dateModified == nil)
        #expect(bar.children.first?.icon == BookmarkFileFixtures.pngIcon)
        #expect(bar.bookmarkCount == 4)
    }

    @Test func titleHintsApplyOnlyToTopLevelFoldersWithoutAttributes() throws {
        let html = """
            <DL><p>
                <DT><H3>Bookmarks Menu</H3>
                <DL><p>
                    <DT><H3>Other bookmarks</H3>
                    <DL><p></DL><p>
                </DL><p>
                <DT><H3 PERSONAL_TOOLBAR_FOLDER="true">Other Bookmarks</H3>
                <DL><p></DL><p>
                <DT><H3>Mobile Bookmarks</H3>
                <DL><p></DL><p>
                <DT><H3>other bookmarks</H3>
                <DL><p></DL><p>
            </DL><p>
            """
        let nodes = try NetscapeBookmarkFile.parse(html)
        #expect(nodes.map(\.rootHint) == [.menu, .toolbar, .mobile, nil])
        #expect(nodes.first?.children.first?.rootHint == nil)
    }

    // MARK: Tolerance

    @Test func decodesEntitiesInTitlesNotesAndAttributes() throws {
        let html = """
            <DL><p>
                <DT><A HREF="https://example.com/?a=1&amp;b=&quot;2&quot;&amp;c=&#39;3&#39;" TAGS="caf&#xE9;,&lt;b&gt;">Tom &amp; Jerry &lt;3 &quot;cartoons&quot; &apos;n&#39; &#x1F600;&nbsp;&#233;</A>
                <DD>  Line &amp;one
            line two &unknown; &amp &#xZZ; &#1114112; done  </DD>
            </DL><p>
            """
        let nodes = try NetscapeBookmarkFile.parse(html)
        let node = try #require(nodes.first)
        #expect(node.url == "https://example.com/?a=1&b=\"2\"&c='3'")
        #expect(node.title == "Tom & Jerry <3 \"cartoons\" 'n' 😀\u{00A0}é")
        #expect(node.tags == ["café", "<b>"])
        #expect(node.notes == "Line &one\nline two &unknown; &amp &#xZZ; &#1114112; done")
    }

    @Test func acceptsLowercaseTagsAndUnquotedOrSingleQuotedAttributes() throws {
        let html = """
            <dl><p>
            <dt><a href=https://a.example/path?q=1 add_date=1700000000 last_modified='1700000001' tags='x, y'>First</a></dt>
            <dt><h3 add_date=1600000000 personal_toolbar_folder=TRUE>Bar</h3>
            <dl>
            <dt><A Href='https://b.example/' Add_Date="1600000001">Second</A>
            <dd>note for second
            </dl>
            <Dt><H3 Unfiled_Bookmarks_Folder="true">Unsorted</h3><dL></Dl>
            </dl>
            """
        let nodes = try NetscapeBookmarkFile.parse(html)
        #expect(
            nodes == [
                Node(
                    title: "First", url: "https://a.example/path?q=1", dateAdded: 1_700_000_000_000,
                    dateModified: 1_700_000_001_000, tags: ["x", "y"]),
                Node(
                    title: "Bar",
                    children: [
                        Node(title: "Second", url: "https://b.example/", dateAdded: 1_600_000_001_000, notes: "note for second")
                    ], dateAdded: 1_600_000_000_000, rootHint: .toolbar),
                Node(title: "Unsorted", rootHint: .other),
            ])
    }

    @Test func toleratesMissingClosingLists() throws {
        let html = """
            <!DOCTYPE NETSCAPE-Bookmark-file-1>
            <DL><p>
                <DT><A HREF="https://one.example/">One</A>
                <DT><H3>Folder</H3>
                <DL><p>
                    <DT><A HREF="https://two.example/">Two</A>
                    <DT><H3>Inner</H3>
                    <DL><p>
                        <DT><A HREF="https://three.example/">Three
            """
        let nodes = try NetscapeBookmarkFile.parse(html)
        #expect(
            nodes == [
                Node(title: "One", url: "https://one.example/"),
                Node(
                    title: "Folder",
                    children: [
                        Node(title: "Two", url: "https://two.example/"),
                        Node(title: "Inner", children: [Node(title: "Three", url: "https://three.example/")]),
                    ]),
            ])
    }

    @Test func toleratesStrayClosingListsAndHeadingsWithoutLists() throws {
        let html = """
            <DL><p>
                <DT><H3>Empty</H3>
                <DT><A HREF="https://a.example/">A</A>
                </DL><p>
                </DL><p>
                <DT><A HREF="https://b.example/">B</A>
                <DT><H3>Trailing</H3>
            """
        let nodes = try NetscapeBookmarkFile.parse(html)
        #expect(
            nodes == [
                Node(title: "Empty"),
                Node(title: "A", url: "https://a.example/"),
                Node(title: "B", url: "https://b.example/"),
                Node(title: "Trailing"),
            ])
    }

    @Test func ignoresSeparatorsCommentsHeaderAndAnchorsWithoutHref() throws {
        let html = """
            <!DOCTYPE NETSCAPE-Bookmark-file-1>
            <!-- a <DL> inside a comment is not a list -->
            <TITLE>Bookmarks</TITLE>
            <H1 LAST_MODIFIED="1700000000">Bookmarks</H1>
            <DL><p>
                <HR>
                <DT><A NAME="anchor">Not a bookmark</A>
                <DD>orphaned note
                <!-- <DT><A HREF="https://commented.example/">Commented</A> -->
                <DT><A HREF="https://kept.example/">Kept</A>
                <hr/>
            </DL><p>
            """
        let nodes = try NetscapeBookmarkFile.parse(html)
        #expect(nodes == [Node(title: "Kept", url: "https://kept.example/")])
    }

    @Test func convertsDatesFromSecondsMillisecondsAndMicroseconds() throws {
        let html = """
            <DL><p>
                <DT><A HREF="https://s.example/" ADD_DATE="1700000000" LAST_MODIFIED=" 1700000001 ">Seconds</A>
                <DT><A HREF="https://ms.example/" ADD_DATE="1700000000123" LAST_MODIFIED="100000000001">Milliseconds</A>
                <DT><A HREF="https://us.example/" ADD_DATE="1700000000123456" LAST_MODIFIED="0">Microseconds</A>
                <DT><A HREF="https://bad.example/" ADD_DATE="yesterday" LAST_MODIFIED="">Bad</A>
                <DT><A HREF="https://huge.example/" ADD_DATE="99999999999999999999999">Huge</A>
            </DL><p>
            """
        let nodes = try NetscapeBookmarkFile.parse(html)
        #expect(nodes.map(\.dateAdded) == [1_700_000_000_000, 1_700_000_000_123, 1_700_000_000_123, nil, nil])
        #expect(nodes.map(\.dateModified) == [1_700_000_001_000, 100_000_000_001, 0, nil, nil])
    }

    @Test func acceptsWindowsLineEndingsAndByteOrderMark() throws {
        let html = "\u{FEFF}<!DOCTYPE NETSCAPE-Bookmark-file-1>\r\n<DL><p>\r\n    <DT><H3 ADD_DATE=\"1\">F</H3>\r\n    <DD>folder note\r\n    <DL><p>\r\n        <DT><A HREF=\"https://a.example/\">A</A>\r\n        <DD>line one\r\nline two\r\n    </DL><p>\r\n</DL><p>\r\n"
        let nodes = try NetscapeBookmarkFile.parse(html)
        #expect(
            nodes == [
                Node(
                    title: "F", children: [Node(title: "A", url: "https://a.example/", notes: "line one\r\nline two")],
                    dateAdded: 1000, notes: "folder note")
            ])
    }

    @Test func rejectsInputWithoutList() {
        for input in ["hello", "", "<html><body><a href=\"https://x.example/\">x</a></body></html>"] {
            let error = #expect(throws: CairnError.self) { try NetscapeBookmarkFile.parse(input) }
            #expect(error?.code == .validation)
            #expect(error?.field == "file")
        }
    }

    @Test func emptyListParsesToNoNodes() throws {
        #expect(try NetscapeBookmarkFile.parse("<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<DL><p>\n</DL><p>\n").isEmpty)
    }

    @Test func deepNestingIsCappedWithoutCrashing() throws {
        let levels = 200
        var html = "<DL><p>\n"
        for level in 1...levels {
            html += "<DT><H3>Level \(level)</H3>\n<DL><p>\n<DT><A HREF=\"https://example.com/\(level)\">Item \(level)</A>\n"
        }
        html += String(repeating: "</DL><p>\n", count: levels + 1)

        let nodes = try NetscapeBookmarkFile.parse(html)
        #expect(nodes.count == 1)
        #expect(nodes.reduce(0) { $0 + $1.bookmarkCount } == levels)

        var depth = 0
        var current = try #require(nodes.first)
        while true {
            depth += 1
            guard let next = current.children.first(where: \.isFolder) else { break }
            current = next
        }
        #expect(depth == NetscapeBookmarkFile.maximumDepth)
        #expect(current.title == "Level 100")
        // Items 100...200 were flattened into the deepest kept folder, in order.
        #expect(current.children.map(\.title) == (100...levels).map { "Item \($0)" })

        // Without any closing tags at all, too.
        let unclosed = try NetscapeBookmarkFile.parse(String(repeating: "<DT><H3>F</H3><DL><p>", count: 1000) + "<DT><A HREF=x>leaf</A>")
        #expect(unclosed.reduce(0) { $0 + $1.bookmarkCount } == 1)
    }

    // MARK: Size

    @Test func parsesTenThousandBookmarksQuicklyAndInOrder() throws {
        // 10 top-level folders x 10 subfolders x 100 bookmarks, about 2 MB like a real large export.
        var html = BookmarkFileFixtures.chrome.components(separatedBy: "<DL><p>")[0] + "<DL><p>\n"
        var index = 0
        for top in 0..<10 {
            html += "    <DT><H3 ADD_DATE=\"1600000000\" LAST_MODIFIED=\"1700000000\">Folder \(top)</H3>\n    <DL><p>\n"
            for sub in 0..<10 {
                html += "        <DT><H3 ADD_DATE=\"1600000000\" LAST_MODIFIED=\"1700000000\">Folder \(top).\(sub)</H3>\n        <DL><p>\n"
                for _ in 0..<100 {
                    html += "            <DT><A HREF=\"https://www.example.com/articles/\(index)/a-reasonably-long-slug-for-realism?utm_source=bookmarks&amp;ref=\(index)\" ADD_DATE=\"\(1_600_000_000 + index)\" ICON=\"\(BookmarkFileFixtures.pngIcon)\">Bookmark \(index) &amp; friends</A>\n"
                    index += 1
                }
                html += "        </DL><p>\n"
            }
            html += "    </DL><p>\n"
        }
        html += "</DL><p>\n"
        #expect(html.utf8.count > 1_500_000)

        let clock = ContinuousClock()
        var nodes: [Node] = []
        let elapsed = try clock.measure { nodes = try NetscapeBookmarkFile.parse(html) }

        let bookmarks = Self.flatten(nodes).filter { !$0.isFolder }
        #expect(bookmarks.count == 10_000)
        #expect(bookmarks.map(\.title) == (0..<10_000).map { "Bookmark \($0) & friends" })
        let lastAdded: Int64 = (1_600_000_000 + 9_999) * 1000
        #expect(bookmarks.last?.dateAdded == lastAdded)
        #expect(nodes.map(\.title) == (0..<10).map { "Folder \($0)" })
        // Generous so a loaded CI machine passes; a quadratic scan would take minutes.
        #expect(elapsed < .seconds(5), "parsing 10,000 bookmarks took \(elapsed)")
    }

    // MARK: Rendering

    /// A tree that sets every field, with characters that need escaping.
    static let everyField: [Node] = [
        Node(
            title: "Bookmarks Menu",
            children: [
                Node(
                    title: "<Tom & \"Jerry\"> 'n' café 😀 日本語", url: "https://example.com/?a=1&b=\"2\"&c=<3>&d='4'",
                    dateAdded: 1_700_000_000_000, dateModified: 1_700_000_100_000, tags: ["a&b", "<tag>", "ünï", "🏷"],
                    notes: "Line one & <two>\nLine \"three\" 🎉", icon: BookmarkFileFixtures.pngIcon),
                Node(
                    title: "  padded title\t", url: "https://padded.example/", dateAdded: 1_000, notes: "\n indented note ",
                    icon: "https://padded.example/favicon.ico"),
                Node(title: "multi\nline\r\ntitle", url: "javascript:alert('hi <there> & \"you\"')"),
            ], dateAdded: 1_600_000_000_000, dateModified: 1_600_000_001_000, notes: "The menu", rootHint: .menu),
        Node(
            title: "Toolbar ⭐️",
            children: [
                Node(
                    title: "Nested & deep",
                    children: [Node(title: "Leaf", url: "https://leaf.example/", dateAdded: 1_500_000_000_000)],
                    dateAdded: 1_500_000_000_000, tags: ["folder-tag"], notes: "folder <notes>",
                    icon: "data:image/gif;base64,R0lGODlhAQABAAAAACw="),
                Node(title: "Empty folder"),
                Node(title: "", url: "https://untitled.example/"),
            ], dateAdded: 1_400_000_000_000, dateModified: 1_400_000_000_000, rootHint: .toolbar),
        Node(title: "Unsorted", children: [Node(title: "x", url: "https://x.example/")], rootHint: .other),
        Node(title: "Mobile bookmarks", children: [], rootHint: .mobile),
        Node(title: "Loose", url: "https://loose.example/", tags: ["only"]),
    ]

    @Test func renderThenParseRoundTripsEveryField() throws {
        let html = NetscapeBookmarkFile.render(Self.everyField)
        let parsed = try NetscapeBookmarkFile.parse(html)
        #expect(parsed == Self.everyField)
        // And rendering the parsed tree gives the same bytes.
        #expect(NetscapeBookmarkFile.render(parsed) == html)
    }

    @Test func roundTripKeepsDatesAtSecondPrecision() throws {
        let node = Node(title: "t", url: "https://t.example/", dateAdded: 1_700_000_000_999, dateModified: 1_700_000_000_001)
        let parsed = try NetscapeBookmarkFile.parse(NetscapeBookmarkFile.render([node]))
        #expect(parsed.first?.dateAdded == 1_700_000_000_000)
        #expect(parsed.first?.dateModified == 1_700_000_000_000)
    }

    @Test func renderWritesTheStandardFormat() {
        let html = NetscapeBookmarkFile.render([
            Node(
                title: "Bar", children: [Node(title: "A & B", url: "https://a.example/?x=1&y=2", dateAdded: 1_700_000_000_500, tags: ["t1", "t2"], notes: "n")],
                dateAdded: 1_600_000_000_000, dateModified: 1_600_000_001_000, rootHint: .toolbar),
            Node(title: "Other", rootHint: .other),
        ])
        let lines = html.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "<!DOCTYPE NETSCAPE-Bookmark-file-1>")
        #expect(lines.contains(#"<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">"#))
        #expect(lines.contains("<TITLE>Bookmarks</TITLE>"))
        #expect(lines.contains("<H1>Bookmarks</H1>"))
        let body = Array(lines.drop(while: { $0 != "<DL><p>" }))
        #expect(
            body == [
                "<DL><p>",
                #"    <DT><H3 ADD_DATE="1600000000" LAST_MODIFIED="1600000001" PERSONAL_TOOLBAR_FOLDER="true">Bar</H3>"#,
                "    <DL><p>",
                #"        <DT><A HREF="https://a.example/?x=1&amp;y=2" ADD_DATE="1700000000" TAGS="t1,t2">A &amp; B</A>"#,
                "        <DD>n",
                "    </DL><p>",
                #"    <DT><H3 UNFILED_BOOKMARKS_FOLDER="true">Other</H3>"#,
                "    <DL><p>",
                "    </DL><p>",
                "</DL><p>",
                "",
            ])
    }

    @Test func fixturesSurviveRenderAndParse() throws {
        for fixture in [BookmarkFileFixtures.firefox, BookmarkFileFixtures.chrome] {
            let nodes = try NetscapeBookmarkFile.parse(fixture)
            #expect(try NetscapeBookmarkFile.parse(NetscapeBookmarkFile.render(nodes)) == nodes)
        }
    }

    @Test func nodesEncodeAsJSON() throws {
        let data = try JSONEncoder().encode(Self.everyField)
        #expect(try JSONDecoder().decode([Node].self, from: data) == Self.everyField)
    }
}
