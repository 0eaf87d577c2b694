/// One node of an imported or exported bookmark tree.
///
/// A node with a `url` is a bookmark; a node without one is a folder whose `children` are kept
/// in file order.
public struct BookmarkTreeNode: Sendable, Equatable, Codable {
    /// Which browser root a top-level folder stands for, when the file says so.
    public enum RootHint: String, Sendable, Equatable, Codable {
        /// The bookmarks toolbar / bookmarks bar (`PERSONAL_TOOLBAR_FOLDER="true"`).
        case toolbar
        /// The bookmarks menu (a top-level folder titled "Bookmarks Menu").
        case menu
        /// Other / unfiled bookmarks (`UNFILED_BOOKMARKS_FOLDER="true"`, or a top-level "Other bookmarks").
        case other
        /// Mobile bookmarks (a top-level folder titled "Mobile bookmarks").
        case mobile
    }

    /// The title of the bookmark or folder, entities decoded.
    public var title: String
    /// The bookmark's URL; `nil` means this node is a folder.
    public var url: String?
    /// The folder's children in file order (always empty for bookmarks).
    public var children: [BookmarkTreeNode]
    /// When the node was added, in milliseconds since 1970 (`ADD_DATE`, seconds in the file).
    public var dateAdded: Int64?
    /// When the node was last modified, in milliseconds since 1970 (`LAST_MODIFIED`, seconds in the file).
    public var dateModified: Int64?
    /// The bookmark's tags (`TAGS="a,b"`: comma separated, trimmed, empty entries dropped).
    public var tags: [String]
    /// The `<DD>` description that follows the item or folder, whitespace-trimmed.
    public var notes: String?
    /// The favicon: the `ICON` attribute (a `data:` URI) or, when that is absent, `ICON_URI`.
    public var icon: String?
    /// Which browser root this folder stands for, when the file says so.
    public var rootHint: RootHint?

    /// Whether this node is a folder (it has no URL).
    public var isFolder: Bool { self.url == nil }

    /// Creates a node. Pass a `url` for a bookmark, leave it `nil` for a folder.
    /// - Parameters:
    ///   - title: the title.
    ///   - url: the bookmark URL, or `nil` for a folder.
    ///   - children: a folder's children, in order.
    ///   - dateAdded: milliseconds since 1970.
    ///   - dateModified: milliseconds since 1970.
    ///   - tags: the bookmark's tags.
    ///   - notes: the description.
    ///   - icon: a `data:` URI or favicon URL.
    ///   - rootHint: which browser root a folder stands for.
    public init(
        title: String, url: String? = nil, children: [BookmarkTreeNode] = [], dateAdded: Int64? = nil,
        dateModified: Int64? = nil, tags: [String] = [], notes: String? = nil, icon: String? = nil,
        rootHint: RootHint? = nil
    ) {
        self.title = title
        self.url = url
        self.children = children
        self.dateAdded = dateAdded
        self.dateModified = dateModified
        self.tags = tags
        self.notes = notes
        self.icon = icon
        self.rootHint = rootHint
    }

    enum CodingKeys: String, CodingKey {
        case title, url, children, dateAdded, dateModified, tags, notes, icon, rootHint
    }

    /// Decodes a node leniently: only `title` is required (`children` and `tags` default to empty),
    /// so hand-written JSON imports work.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            title: try container.decodeIfPresent(String.self, forKey: .title) ?? "",
            url: try container.decodeIfPresent(String.self, forKey: .url),
            children: try container.decodeIfPresent([BookmarkTreeNode].self, forKey: .children) ?? [],
            dateAdded: try container.decodeIfPresent(Int64.self, forKey: .dateAdded),
            dateModified: try container.decodeIfPresent(Int64.self, forKey: .dateModified),
            tags: try container.decodeIfPresent([String].self, forKey: .tags) ?? [],
            notes: try container.decodeIfPresent(String.self, forKey: .notes),
            icon: try container.decodeIfPresent(String.self, forKey: .icon),
            rootHint: try container.decodeIfPresent(RootHint.self, forKey: .rootHint)
        )
    }

    /// Number of non-folder nodes in this subtree (itself included).
    public var bookmarkCount: Int {
        var count = 0
        var pending: [BookmarkTreeNode] = [self]
        while let node = pending.popLast() {
            if node.isFolder {
                pending.append(contentsOf: node.children)
            } else {
                count += 1
            }
        }
        return count
    }
}

/// Reads and writes the Netscape bookmark HTML format (`<!DOCTYPE NETSCAPE-Bookmark-file-1>`) that
/// Firefox and Chrome export and import.
///
/// Parsing is a single forward scan over the UTF-8 bytes, tolerant of the many ways real files
/// are not well-formed: any letter case, quoted, single-quoted or unquoted attributes, missing
/// `</DT>`/`</A>`/`</DL>`, comments and header noise. Separators (`<HR>`) and anchors without `HREF`
/// are skipped. Folders nest at most 100 deep: a heading below that is dropped and its list's items
/// join the folder at level 100, in order.
///
/// Rendering writes one item per line, upper-case tags and double-quoted attributes, which is the
/// shape Chrome's line-based importer needs. Root hints `.toolbar` and `.other` are written as
/// `PERSONAL_TOOLBAR_FOLDER` / `UNFILED_BOOKMARKS_FOLDER`; the format has no attribute for `.menu`
/// and `.mobile`, so those survive a round trip only on top-level folders titled "Bookmarks Menu"
/// and "Mobile bookmarks".
public enum NetscapeBookmarkFile {
    /// The deepest folder nesting the parser keeps; deeper headings are dropped and their lists flattened into the folder at this level.
    static let maximumDepth = 100

    /// Parses a bookmark file; returns the top-level nodes in file order.
    /// Throws `CairnError(.validation, "...", field: "file")` when the input has no <DL> list at all (not a bookmark file).
    public static func parse(_ html: String) throws(CairnError) -> [BookmarkTreeNode] {
        var source = html
        let nodes: [BookmarkTreeNode]? = source.withUTF8 { buffer in
            guard let base = buffer.baseAddress, !buffer.isEmpty else { return nil }
            var builder = TreeBuilder(scanner: Scanner(base: base, count: buffer.count))
            builder.run()
            return builder.sawList ? builder.topLevelNodes : nil
        }
        guard let nodes else {
            throw CairnError(.validation, "Not a bookmark file: no <DL> bookmark list found", field: "file")
        }
        return nodes
    }

    /// Renders nodes as a standard bookmark file that Firefox and Chrome import:
    /// the `<!DOCTYPE NETSCAPE-Bookmark-file-1>` header, META charset UTF-8, TITLE and H1 "Bookmarks",
    /// `<DL><p>` lists, `<DT><H3 ADD_DATE=".." LAST_MODIFIED="..">` folders (PERSONAL_TOOLBAR_FOLDER="true" for
    /// .toolbar, UNFILED_BOOKMARKS_FOLDER="true" for .other), `<DT><A HREF=".." ADD_DATE=".." LAST_MODIFIED=".." ICON=".." TAGS="..">`,
    /// `<DD>` notes, 4-space indentation per level. Dates written in whole seconds. All text and attributes HTML-escaped.
    ///
    /// An icon that is a `data:` URI is written as `ICON`, any other icon (a favicon URL) as `ICON_URI`.
    public static func render(_ nodes: [BookmarkTreeNode]) -> String {
        var out = """
            <!DOCTYPE NETSCAPE-Bookmark-file-1>
            <!-- This is an automatically generated file.
                 It will be read and overwritten.
                 DO NOT EDIT! -->
            <META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">
            <TITLE>Bookmarks</TITLE>
            <H1>Bookmarks</H1>
            <DL><p>

            """
        for node in nodes {
            Renderer.render(node, indent: "    ", into: &out)
        }
        out += "</DL><p>\n"
        return out
    }
}

// Everything below is nested in `NetscapeBookmarkFile` so that its helper names cannot collide with
// other declarations in the module.
extension NetscapeBookmarkFile {
    // MARK: - Shared byte helpers

    /// ASCII bytes used by the scanner and the renderer (computed, so debug builds pay no lazy-global cost).
    fileprivate enum Byte {
        static var lessThan: UInt8 { 0x3C }
        static var greaterThan: UInt8 { 0x3E }
        static var slash: UInt8 { 0x2F }
        static var bang: UInt8 { 0x21 }
        static var question: UInt8 { 0x3F }
        static var dash: UInt8 { 0x2D }
        static var equals: UInt8 { 0x3D }
        static var doubleQuote: UInt8 { 0x22 }
        static var singleQuote: UInt8 { 0x27 }
        static var ampersand: UInt8 { 0x26 }
        static var semicolon: UInt8 { 0x3B }
        static var comma: UInt8 { 0x2C }
        static var hash: UInt8 { 0x23 }
        static var space: UInt8 { 0x20 }
        static var tab: UInt8 { 0x09 }
        static var newline: UInt8 { 0x0A }
        static var carriageReturn: UInt8 { 0x0D }
        static var formFeed: UInt8 { 0x0C }
        static var minus: UInt8 { 0x2D }
        static var plus: UInt8 { 0x2B }
        static var zero: UInt8 { 0x30 }
        static var nine: UInt8 { 0x39 }
    }

    /// HTML's ASCII whitespace: the characters the parser trims from titles and notes.
    @inline(__always)
    fileprivate static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == Byte.space || byte == Byte.newline || byte == Byte.tab || byte == Byte.carriageReturn || byte == Byte.formFeed
    }

    @inline(__always)
    fileprivate static func isTagNameByte(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= Byte.zero && byte <= Byte.nine)
    }

    @inline(__always)
    fileprivate static func isASCIILetter(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
    }

    @inline(__always)
    fileprivate static func asciiLower(_ byte: UInt8) -> UInt8 {
        (byte >= 0x41 && byte <= 0x5A) ? byte + 0x20 : byte
    }

    /// Whether the bytes at `range` equal the lower-case ASCII `name`, ignoring case.
    fileprivate static func bytesEqualIgnoringCase(_ base: UnsafePointer<UInt8>, _ range: Range<Int>, _ name: StaticString) -> Bool {
        let length = range.upperBound - range.lowerBound
        guard length == name.utf8CodeUnitCount else { return false }
        let expected = name.utf8Start
        var offset = 0
        while offset < length {
            if asciiLower(base[range.lowerBound + offset]) != expected[offset] { return false }
            offset += 1
        }
        return true
    }

    /// `range` without leading and trailing ASCII whitespace.
    fileprivate static func trimmedRange(_ base: UnsafePointer<UInt8>, _ range: Range<Int>) -> Range<Int> {
        var start = range.lowerBound
        var end = range.upperBound
        while start < end, isWhitespace(base[start]) { start += 1 }
        while end > start, isWhitespace(base[end - 1]) { end -= 1 }
        return start..<end
    }

    /// Trims Unicode whitespace from both ends of a string.
    fileprivate static func trimmedWhitespace(_ string: String) -> String {
        let scalars = string.unicodeScalars
        guard let firstScalar = scalars.first, let lastScalar = scalars.last else { return string }
        if !firstScalar.properties.isWhitespace, !lastScalar.properties.isWhitespace { return string }
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }

    /// A string from a byte range (invalid UTF-8 is repaired with U+FFFD).
    @inline(__always)
    fileprivate static func makeString(_ base: UnsafePointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(start: base + range.lowerBound, count: range.upperBound - range.lowerBound), as: UTF8.self)
    }

    // MARK: - Rendering

    fileprivate enum Renderer {
        static func render(_ node: BookmarkTreeNode, indent: String, into out: inout String) {
            out += indent
            if let url = node.url {
                out += "<DT><A HREF=\""
                appendEscaped(url, mode: .attribute, to: &out)
                out += "\""
                appendDates(of: node, to: &out)
                appendIconAndTags(of: node, to: &out)
                out += ">"
                appendEscaped(node.title, mode: .title, to: &out)
                out += "</A>\n"
                appendNotes(of: node, indent: indent, to: &out)
            } else {
                out += "<DT><H3"
                appendDates(of: node, to: &out)
                switch node.rootHint {
                case .toolbar: out += " PERSONAL_TOOLBAR_FOLDER=\"true\""
                case .other: out += " UNFILED_BOOKMARKS_FOLDER=\"true\""
                case .menu, .mobile, .none: break
                }
                appendIconAndTags(of: node, to: &out)
                out += ">"
                appendEscaped(node.title, mode: .title, to: &out)
                out += "</H3>\n"
                appendNotes(of: node, indent: indent, to: &out)
                out += indent
                out += "<DL><p>\n"
                let childIndent = indent + "    "
                for child in node.children {
                    render(child, indent: childIndent, into: &out)
                }
                out += indent
                out += "</DL><p>\n"
            }
        }

        static func appendDates(of node: BookmarkTreeNode, to out: inout String) {
            if let added = node.dateAdded {
                out += " ADD_DATE=\""
                out += String(seconds(fromMilliseconds: added))
                out += "\""
            }
            if let modified = node.dateModified {
                out += " LAST_MODIFIED=\""
                out += String(seconds(fromMilliseconds: modified))
                out += "\""
            }
        }

        static func appendIconAndTags(of node: BookmarkTreeNode, to out: inout String) {
            if let icon = node.icon, !icon.isEmpty {
                out += icon.prefix(5).lowercased() == "data:" ? " ICON=\"" : " ICON_URI=\""
                appendEscaped(icon, mode: .attribute, to: &out)
                out += "\""
            }
            if !node.tags.isEmpty {
                let tags = node.tags.map(trimmedWhitespace).filter { !$0.isEmpty }
                if !tags.isEmpty {
                    out += " TAGS=\""
                    appendEscaped(tags.joined(separator: ","), mode: .attribute, to: &out)
                    out += "\""
                }
            }
        }

        static func appendNotes(of node: BookmarkTreeNode, indent: String, to out: inout String) {
            guard let notes = node.notes, !notes.isEmpty else { return }
            out += indent
            out += "<DD>"
            appendEscaped(notes, mode: .notes, to: &out)
            out += "\n"
        }

        /// Floor division, so that negative milliseconds map to the second they fall in.
        static func seconds(fromMilliseconds ms: Int64) -> Int64 {
            let quotient = ms / 1000
            return (ms % 1000 < 0) ? quotient - 1 : quotient
        }

        enum EscapeMode {
            /// Titles: one line, so CR and LF are written as character references.
            case title
            /// Notes: raw newlines are kept.
            case notes
            /// Attribute values: one line, tabs and newlines as character references, nothing trimmed.
            case attribute
        }

        /// Appends `text` HTML-escaped (`& < > " '`). Leading and trailing ASCII whitespace of titles and notes
        /// is written as character references so that the parser's trimming leaves it alone.
        static func appendEscaped(_ text: String, mode: EscapeMode, to out: inout String) {
            var text = text
            text.withUTF8 { buffer in
                guard let base = buffer.baseAddress else { return }
                let count = buffer.count
                var lead = 0
                var trail = count
                if mode != .attribute {
                    while lead < count, isWhitespace(base[lead]) { lead += 1 }
                    while trail > lead, isWhitespace(base[trail - 1]) { trail -= 1 }
                }
                var index = 0
                while index < lead {
                    out += numericReference(base[index])
                    index += 1
                }
                var runStart = lead
                while index < trail {
                    if let replacement = replacement(for: base[index], mode: mode) {
                        if runStart < index { out += makeString(base, runStart..<index) }
                        out += replacement
                        runStart = index + 1
                    }
                    index += 1
                }
                if runStart < trail { out += makeString(base, runStart..<trail) }
                while index < count {
                    out += numericReference(base[index])
                    index += 1
                }
            }
        }

        @inline(__always)
        static func replacement(for byte: UInt8, mode: EscapeMode) -> String? {
            switch byte {
            case Byte.ampersand: return "&amp;"
            case Byte.lessThan: return "&lt;"
            case Byte.greaterThan: return "&gt;"
            case Byte.doubleQuote: return "&quot;"
            case Byte.singleQuote: return "&#39;"
            case Byte.newline: return mode == .notes ? nil : "&#10;"
            case Byte.carriageReturn: return mode == .notes ? nil : "&#13;"
            case Byte.tab: return mode == .attribute ? "&#9;" : nil
            default: return nil
            }
        }

        static func numericReference(_ byte: UInt8) -> String {
            "&#" + String(byte) + ";"
        }
    }

    // MARK: - Scanning

    /// The tags the tree builder cares about; everything else is `.other` and ignored.
    fileprivate enum TagKind {
        case anchor, heading3, list, term, description, rule, lineBreak, other
    }

    /// The attributes the tree builder reads, as raw (undecoded) byte ranges. The first occurrence wins.
    fileprivate struct Attributes {
        var href: Range<Int>?
        var addDate: Range<Int>?
        var lastModified: Range<Int>?
        var icon: Range<Int>?
        var iconURI: Range<Int>?
        var tags: Range<Int>?
        var toolbarFolder: Range<Int>?
        var unfiledFolder: Range<Int>?
    }

    /// A token from the scanner. A start tag's attributes are in ``Scanner/attributes``.
    fileprivate enum Token {
        case text(Range<Int>)
        case tag(TagKind, isEnd: Bool)
        case end
    }

    /// A forward-only tokenizer over UTF-8 bytes. Every call to ``next()`` consumes at least one byte and
    /// no search runs twice over the same bytes, so a whole file is scanned in linear time.
    ///
    /// The pointer is only valid inside `String.withUTF8`; the scanner never outlives that call.
    fileprivate struct Scanner {
        let base: UnsafePointer<UInt8>
        let count: Int
        var position = 0
        /// The smallest start offset from which a search for a closing `"` already failed: any later search fails too.
        var doubleQuoteMissingFrom = Int.max
        /// As ``doubleQuoteMissingFrom``, for `'`.
        var singleQuoteMissingFrom = Int.max
        /// The smallest start offset from which a search for `-->` already failed.
        var commentEndMissingFrom = Int.max
        /// The attributes of the last `<A>` or `<H3>` start tag.
        var attributes = Attributes()

        init(base: UnsafePointer<UInt8>, count: Int) {
            self.base = base
            self.count = count
        }

        mutating func next() -> Token {
            let start = self.position
            guard start < self.count else { return .end }
            if self.base[start] != Byte.lessThan {
                self.position = self.index(of: Byte.lessThan, from: start + 1)
                return .text(start..<self.position)
            }
            let afterOpen = start + 1
            guard afterOpen < self.count else {
                self.position = self.count
                return .text(start..<self.count)
            }
            let marker = self.base[afterOpen]
            if marker == Byte.bang {
                if afterOpen + 2 < self.count, self.base[afterOpen + 1] == Byte.dash, self.base[afterOpen + 2] == Byte.dash {
                    self.skipComment(from: afterOpen + 3)
                } else {
                    self.skipPastTagEnd(from: afterOpen + 1)
                }
                return .tag(.other, isEnd: false)
            }
            if marker == Byte.question {
                self.skipPastTagEnd(from: afterOpen + 1)
                return .tag(.other, isEnd: false)
            }
            if marker == Byte.slash {
                var cursor = afterOpen + 1
                while cursor < self.count, isTagNameByte(self.base[cursor]) { cursor += 1 }
                let kind = self.kind(of: (afterOpen + 1)..<cursor)
                self.skipPastTagEnd(from: cursor)
                return .tag(kind, isEnd: true)
            }
            if isASCIILetter(marker) {
                var cursor = afterOpen
                while cursor < self.count, isTagNameByte(self.base[cursor]) { cursor += 1 }
                let kind = self.kind(of: afterOpen..<cursor)
                self.position = cursor
                self.scanAttributes(keep: kind == .anchor || kind == .heading3)
                return .tag(kind, isEnd: false)
            }
            // A lone "<" (for example "a < b"): plain text.
            self.position = self.index(of: Byte.lessThan, from: afterOpen)
            return .text(start..<self.position)
        }

        /// The first index of `byte` at or after `from`, or `count`.
        @inline(__always)
        func index(of byte: UInt8, from: Int) -> Int {
            var cursor = from
            while cursor < self.count, self.base[cursor] != byte { cursor += 1 }
            return cursor
        }

        mutating func skipPastTagEnd(from: Int) {
            let end = self.index(of: Byte.greaterThan, from: from)
            self.position = min(end + 1, self.count)
        }

        /// Skips a comment body; `from` is just after `<!--`. An unterminated comment ends at the next `>`.
        mutating func skipComment(from: Int) {
            if from < self.commentEndMissingFrom {
                var cursor = from
                while cursor + 2 < self.count {
                    if self.base[cursor] == Byte.dash, self.base[cursor + 1] == Byte.dash, self.base[cursor + 2] == Byte.greaterThan {
                        self.position = cursor + 3
                        return
                    }
                    cursor += 1
                }
                self.commentEndMissingFrom = from
            }
            self.skipPastTagEnd(from: from)
        }

        func kind(of range: Range<Int>) -> TagKind {
            let length = range.upperBound - range.lowerBound
            guard length > 0, length <= 2 else { return .other }
            let first = asciiLower(self.base[range.lowerBound])
            if length == 1 {
                return first == UInt8(ascii: "a") ? .anchor : .other
            }
            let second = asciiLower(self.base[range.lowerBound + 1])
            if first == UInt8(ascii: "d") {
                if second == UInt8(ascii: "l") { return .list }
                if second == UInt8(ascii: "t") { return .term }
                if second == UInt8(ascii: "d") { return .description }
            } else if first == UInt8(ascii: "h") {
                if second == UInt8(ascii: "3") { return .heading3 }
                if second == UInt8(ascii: "r") { return .rule }
            } else if first == UInt8(ascii: "b"), second == UInt8(ascii: "r") {
                return .lineBreak
            }
            return .other
        }

        /// Reads attributes up to and including the closing `>`; `position` starts just after the tag name.
        mutating func scanAttributes(keep: Bool) {
            if keep { self.attributes = Attributes() }
            while true {
                while self.position < self.count, isWhitespace(self.base[self.position]) || self.base[self.position] == Byte.slash {
                    self.position += 1
                }
                guard self.position < self.count else { return }
                if self.base[self.position] == Byte.greaterThan {
                    self.position += 1
                    return
                }
                let nameStart = self.position
                while self.position < self.count {
                    let byte = self.base[self.position]
                    if isWhitespace(byte) || byte == Byte.equals || byte == Byte.greaterThan || byte == Byte.slash { break }
                    self.position += 1
                }
                if self.position == nameStart {
                    // A stray "=" where a name should be: skip it.
                    self.position += 1
                    continue
                }
                let name = nameStart..<self.position
                while self.position < self.count, isWhitespace(self.base[self.position]) { self.position += 1 }
                var value = self.position..<self.position
                if self.position < self.count, self.base[self.position] == Byte.equals {
                    self.position += 1
                    while self.position < self.count, isWhitespace(self.base[self.position]) { self.position += 1 }
                    value = self.scanValue()
                }
                if keep { self.store(name: name, value: value) }
            }
        }

        mutating func store(name: Range<Int>, value: Range<Int>) {
            if bytesEqualIgnoringCase(self.base, name, "href") {
                if self.attributes.href == nil { self.attributes.href = value }
            } else if bytesEqualIgnoringCase(self.base, name, "add_date") {
                if self.attributes.addDate == nil { self.attributes.addDate = value }
            } else if bytesEqualIgnoringCase(self.base, name, "last_modified") {
                if self.attributes.lastModified == nil { self.attributes.lastModified = value }
            } else if bytesEqualIgnoringCase(self.base, name, "icon") {
                if self.attributes.icon == nil { self.attributes.icon = value }
            } else if bytesEqualIgnoringCase(self.base, name, "icon_uri") {
                if self.attributes.iconURI == nil { self.attributes.iconURI = value }
            } else if bytesEqualIgnoringCase(self.base, name, "tags") {
                if self.attributes.tags == nil { self.attributes.tags = value }
            } else if bytesEqualIgnoringCase(self.base, name, "personal_toolbar_folder") {
                if self.attributes.toolbarFolder == nil { self.attributes.toolbarFolder = value }
            } else if bytesEqualIgnoringCase(self.base, name, "unfiled_bookmarks_folder") {
                if self.attributes.unfiledFolder == nil { self.attributes.unfiledFolder = value }
            }
        }

        /// Reads one attribute value at `position`: quoted, or unquoted up to whitespace or `>`.
        /// A quote that is never closed ends the value at the next `>` instead of swallowing the file.
        mutating func scanValue() -> Range<Int> {
            guard self.position < self.count else { return self.count..<self.count }
            let quote = self.base[self.position]
            if quote == Byte.doubleQuote || quote == Byte.singleQuote {
                let valueStart = self.position + 1
                let missingFrom = quote == Byte.doubleQuote ? self.doubleQuoteMissingFrom : self.singleQuoteMissingFrom
                if valueStart < missingFrom {
                    let close = self.index(of: quote, from: valueStart)
                    if close < self.count {
                        self.position = close + 1
                        return valueStart..<close
                    }
                    if quote == Byte.doubleQuote {
                        self.doubleQuoteMissingFrom = valueStart
                    } else {
                        self.singleQuoteMissingFrom = valueStart
                    }
                }
                let end = self.index(of: Byte.greaterThan, from: valueStart)
                self.position = end
                return valueStart..<end
            }
            let valueStart = self.position
            while self.position < self.count, !isWhitespace(self.base[self.position]), self.base[self.position] != Byte.greaterThan {
                self.position += 1
            }
            return valueStart..<self.position
        }
    }

    // MARK: - Tree building

    /// Builds the tree from the scanner's tokens with an explicit stack of open folders.
    fileprivate struct TreeBuilder {
        /// An open list: the folder it belongs to (the root for the top-level list) and how many
        /// anonymous or flattened `<DL>`s inside it still wait for their `</DL>`.
        struct Frame {
            var node: BookmarkTreeNode
            var extraOpens = 0
        }

        /// Where a `<DD>` description goes.
        enum NotesTarget {
            case none
            case pendingFolder
            case lastChild
        }

        /// What text is being collected.
        enum Mode {
            case idle
            /// The title of a bookmark or folder; `keep` is false for anchors without HREF and folders past the depth cap.
            case title(BookmarkTreeNode, keep: Bool)
            case notes
        }

        var scanner: Scanner
        var frames: [Frame] = [Frame(node: BookmarkTreeNode(title: ""))]
        var sawList = false
        var rootListOpened = false
        var pendingFolder: BookmarkTreeNode?
        var notesTarget = NotesTarget.none
        var mode = Mode.idle
        /// The collected text when it is a single run of the input (the common case).
        var textRange: Range<Int>?
        /// The collected text once it spans several runs.
        var textBuffer: [UInt8] = []
        var textIsBuffered = false

        init(scanner: Scanner) {
            self.scanner = scanner
        }

        /// Folder frames open below the root.
        var depth: Int { self.frames.count - 1 }

        var topLevelNodes: [BookmarkTreeNode] { self.frames.first?.node.children ?? [] }

        mutating func run() {
            while true {
                switch self.scanner.next() {
                case .end:
                    self.finishText()
                    self.flushPendingFolder()
                    while self.frames.count > 1 { self.popFrame() }
                    return
                case .text(let range):
                    if case .idle = self.mode { continue }
                    self.collect(range)
                case .tag(let kind, let isEnd):
                    self.handle(kind, isEnd: isEnd)
                }
            }
        }

        mutating func handle(_ kind: TagKind, isEnd: Bool) {
            switch (kind, isEnd) {
            case (.other, _), (.term, true):
                break
            case (.lineBreak, _):
                if case .notes = self.mode { self.collectNewline() }
            case (.anchor, true):
                if case .title = self.mode { self.finishTitle() }
            case (.heading3, true):
                if case .title = self.mode { self.finishTitle() }
            case (.description, true):
                if case .notes = self.mode { self.finishNotes() }
            case (.anchor, false):
                self.finishText()
                self.flushPendingFolder()
                self.notesTarget = .none
                self.startBookmark(self.scanner.attributes)
            case (.heading3, false):
                self.finishText()
                self.flushPendingFolder()
                self.notesTarget = .none
                self.startFolder(self.scanner.attributes)
            case (.description, false):
                self.finishText()
                self.resetText()
                self.mode = .notes
            case (.term, false), (.rule, _):
                self.finishText()
                self.flushPendingFolder()
                self.notesTarget = .none
            case (.list, false):
                self.finishText()
                self.openList()
                self.notesTarget = .none
            case (.list, true):
                self.finishText()
                self.flushPendingFolder()
                self.closeList()
                self.notesTarget = .none
            }
        }

        // MARK: Text

        mutating func resetText() {
            self.textRange = nil
            self.textIsBuffered = false
            self.textBuffer.removeAll(keepingCapacity: true)
        }

        mutating func collect(_ range: Range<Int>) {
            if self.textIsBuffered {
                self.textBuffer.append(contentsOf: UnsafeBufferPointer(start: self.scanner.base + range.lowerBound, count: range.count))
            } else if let first = self.textRange {
                self.textIsBuffered = true
                self.textBuffer.append(contentsOf: UnsafeBufferPointer(start: self.scanner.base + first.lowerBound, count: first.count))
                self.textBuffer.append(contentsOf: UnsafeBufferPointer(start: self.scanner.base + range.lowerBound, count: range.count))
            } else {
                self.textRange = range
            }
        }

        mutating func collectNewline() {
            if !self.textIsBuffered {
                self.textIsBuffered = true
                if let first = self.textRange {
                    self.textBuffer.append(contentsOf: UnsafeBufferPointer(start: self.scanner.base + first.lowerBound, count: first.count))
                }
            }
            self.textBuffer.append(Byte.newline)
        }

        /// The collected text, ASCII whitespace trimmed, then entities decoded.
        func collectedText() -> String {
            if self.textIsBuffered {
                return self.textBuffer.withUnsafeBufferPointer { buffer in
                    guard let base = buffer.baseAddress else { return "" }
                    return EntityDecoder.decode(base, trimmedRange(base, 0..<buffer.count))
                }
            }
            guard let range = self.textRange else { return "" }
            return EntityDecoder.decode(self.scanner.base, trimmedRange(self.scanner.base, range))
        }

        // MARK: Items

        mutating func startBookmark(_ attributes: Attributes) {
            self.resetText()
            guard let href = attributes.href else {
                self.mode = .title(BookmarkTreeNode(title: ""), keep: false)
                return
            }
            var node = BookmarkTreeNode(title: "", url: self.decoded(href))
            self.applyCommonAttributes(attributes, to: &node)
            self.mode = .title(node, keep: true)
        }

        mutating func startFolder(_ attributes: Attributes) {
            self.resetText()
            var node = BookmarkTreeNode(title: "")
            self.applyCommonAttributes(attributes, to: &node)
            if let range = attributes.toolbarFolder, self.isTrue(range) {
                node.rootHint = .toolbar
            } else if let range = attributes.unfiledFolder, self.isTrue(range) {
                node.rootHint = .other
            }
            // Past the depth cap the folder itself is dropped and its list flattened into the current one.
            self.mode = .title(node, keep: self.depth < NetscapeBookmarkFile.maximumDepth)
        }

        func applyCommonAttributes(_ attributes: Attributes, to node: inout BookmarkTreeNode) {
            if let range = attributes.addDate { node.dateAdded = self.date(range) }
            if let range = attributes.lastModified { node.dateModified = self.date(range) }
            if let range = attributes.tags { node.tags = self.tags(range) }
            if let range = attributes.icon, !range.isEmpty {
                node.icon = self.decoded(range)
            } else if let range = attributes.iconURI, !range.isEmpty {
                node.icon = self.decoded(range)
            }
        }

        /// Ends the title or notes being collected, if any.
        mutating func finishText() {
            switch self.mode {
            case .idle: break
            case .title: self.finishTitle()
            case .notes: self.finishNotes()
            }
        }

        mutating func finishTitle() {
            guard case .title(var node, let keep) = self.mode else { return }
            self.mode = .idle
            guard keep else {
                self.notesTarget = .none
                return
            }
            node.title = self.collectedText()
            if node.isFolder {
                if node.rootHint == nil, self.depth == 0 {
                    switch node.title {
                    case "Other bookmarks", "Other Bookmarks": node.rootHint = .other
                    case "Mobile bookmarks", "Mobile Bookmarks": node.rootHint = .mobile
                    case "Bookmarks Menu": node.rootHint = .menu
                    default: break
                    }
                }
                self.pendingFolder = node
                self.notesTarget = .pendingFolder
            } else {
                self.frames[self.frames.count - 1].node.children.append(node)
                self.notesTarget = .lastChild
            }
        }

        mutating func finishNotes() {
            guard case .notes = self.mode else { return }
            self.mode = .idle
            defer { self.notesTarget = .none }
            guard self.notesTarget != .none else { return }
            let text = self.collectedText()
            guard !text.isEmpty else { return }
            switch self.notesTarget {
            case .none:
                break
            case .pendingFolder:
                self.pendingFolder?.notes = text
            case .lastChild:
                let top = self.frames.count - 1
                let last = self.frames[top].node.children.count - 1
                if last >= 0 { self.frames[top].node.children[last].notes = text }
            }
        }

        // MARK: Lists

        /// A folder heading with no list after it is an empty folder.
        mutating func flushPendingFolder() {
            guard let folder = self.pendingFolder else { return }
            self.pendingFolder = nil
            self.frames[self.frames.count - 1].node.children.append(folder)
        }

        mutating func openList() {
            self.sawList = true
            if let folder = self.pendingFolder {
                self.pendingFolder = nil
                self.frames.append(Frame(node: folder))
            } else if self.frames.count == 1, !self.rootListOpened {
                self.rootListOpened = true
            } else {
                // A list with no heading, or past the depth cap: its items join the current folder.
                self.frames[self.frames.count - 1].extraOpens += 1
            }
        }

        mutating func closeList() {
            let top = self.frames.count - 1
            if self.frames[top].extraOpens > 0 {
                self.frames[top].extraOpens -= 1
            } else if top > 0 {
                self.popFrame()
            }
            // A stray </DL> at the top level is ignored.
        }

        mutating func popFrame() {
            guard self.frames.count > 1, let frame = self.frames.popLast() else { return }
            self.frames[self.frames.count - 1].node.children.append(frame.node)
        }

        // MARK: Values

        func isTrue(_ range: Range<Int>) -> Bool {
            bytesEqualIgnoringCase(self.scanner.base, trimmedRange(self.scanner.base, range), "true")
        }

        func decoded(_ range: Range<Int>) -> String {
            EntityDecoder.decode(self.scanner.base, range)
        }

        /// `TAGS="a, b,,c"`: comma separated, trimmed, empty entries dropped.
        func tags(_ range: Range<Int>) -> [String] {
            let value = self.decoded(range)
            guard !value.isEmpty else { return [] }
            return value.split(separator: ",").map { trimmedWhitespace(String($0)) }.filter { !$0.isEmpty }
        }

        /// Seconds (or, when implausibly large, microseconds or milliseconds) to milliseconds; `nil` unless an integer.
        func date(_ range: Range<Int>) -> Int64? {
            let base = self.scanner.base
            let digits = trimmedRange(base, range)
            var index = digits.lowerBound
            var negative = false
            if index < digits.upperBound, base[index] == Byte.minus || base[index] == Byte.plus {
                negative = base[index] == Byte.minus
                index += 1
            }
            guard index < digits.upperBound else { return nil }
            var value: Int64 = 0
            while index < digits.upperBound {
                let byte = base[index]
                guard byte >= Byte.zero, byte <= Byte.nine else { return nil }
                let (shifted, overflowA) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflowB) = shifted.addingReportingOverflow(Int64(byte - Byte.zero))
                if overflowA || overflowB { return nil }
                value = sum
                index += 1
            }
            if negative { value = -value }
            if value > 100_000_000_000_000 { return value / 1000 }
            if value > 100_000_000_000 { return value }
            let (milliseconds, overflow) = value.multipliedReportingOverflow(by: 1000)
            return overflow ? nil : milliseconds
        }
    }

    // MARK: - Entities

    /// Decodes the HTML character references that bookmark files use: `&amp; &lt; &gt; &quot; &apos; &nbsp;`
    /// and numeric `&#NNN;` / `&#xHH;`. Anything else stays as written.
    fileprivate enum EntityDecoder {
        /// The longest reference name looked at (`#x0010FFFF` and the named ones all fit), so decoding stays linear.
        static let maximumNameLength = 12

        static func decode(_ base: UnsafePointer<UInt8>, _ range: Range<Int>) -> String {
            var index = range.lowerBound
            let end = range.upperBound
            while index < end, base[index] != Byte.ampersand { index += 1 }
            if index == end { return makeString(base, range) }

            var out: [UInt8] = []
            out.reserveCapacity(end - range.lowerBound)
            var runStart = range.lowerBound
            while index < end {
                guard base[index] == Byte.ampersand else {
                    index += 1
                    continue
                }
                var semicolon = index + 1
                let limit = min(end, index + 1 + maximumNameLength)
                while semicolon < limit, base[semicolon] != Byte.semicolon, base[semicolon] != Byte.ampersand { semicolon += 1 }
                guard semicolon < limit, base[semicolon] == Byte.semicolon,
                    let scalar = self.scalar(base, (index + 1)..<semicolon)
                else {
                    index += 1
                    continue
                }
                if runStart < index {
                    out.append(contentsOf: UnsafeBufferPointer(start: base + runStart, count: index - runStart))
                }
                UTF8.encode(scalar) { out.append($0) }
                index = semicolon + 1
                runStart = index
            }
            if runStart < end {
                out.append(contentsOf: UnsafeBufferPointer(start: base + runStart, count: end - runStart))
            }
            return String(decoding: out, as: UTF8.self)
        }

        /// The character a reference name (between `&` and `;`) stands for, or `nil` if unknown.
        static func scalar(_ base: UnsafePointer<UInt8>, _ name: Range<Int>) -> Unicode.Scalar? {
            guard !name.isEmpty else { return nil }
            if base[name.lowerBound] == Byte.hash {
                var index = name.lowerBound + 1
                var radix: UInt32 = 10
                if index < name.upperBound, asciiLower(base[index]) == UInt8(ascii: "x") {
                    radix = 16
                    index += 1
                }
                guard index < name.upperBound else { return nil }
                var value: UInt32 = 0
                while index < name.upperBound {
                    let digit = asciiLower(base[index])
                    let digitValue: UInt32
                    if digit >= Byte.zero, digit <= Byte.nine {
                        digitValue = UInt32(digit - Byte.zero)
                    } else if radix == 16, digit >= UInt8(ascii: "a"), digit <= UInt8(ascii: "f") {
                        digitValue = UInt32(digit - UInt8(ascii: "a") + 10)
                    } else {
                        return nil
                    }
                    value = value * radix + digitValue
                    if value > 0x10FFFF { return nil }
                    index += 1
                }
                guard value != 0 else { return nil }
                return Unicode.Scalar(value)
            }
            if bytesEqualIgnoringCase(base, name, "amp") { return "&" }
            if bytesEqualIgnoringCase(base, name, "lt") { return "<" }
            if bytesEqualIgnoringCase(base, name, "gt") { return ">" }
            if bytesEqualIgnoringCase(base, name, "quot") { return "\"" }
            if bytesEqualIgnoringCase(base, name, "apos") { return "'" }
            if bytesEqualIgnoringCase(base, name, "nbsp") { return "\u{00A0}" }
            return nil
        }
    }
}
