/// A bookmark or folder as the API shows it (seed 000 field names).
public struct Bookmark: Codable, Sendable, Equatable {
    /// The id (client-chosen or a server UUID); the roots are `toolbar`, `menu`, `other`, `mobile`.
    public var id: String
    /// The parent folder; `nil` at the top level.
    public var parentId: String?
    public var title: String
    /// `nil` for folders.
    public var url: String?
    /// A favicon URL or data URI.
    public var favicon: String?
    public var isFolder: Bool
    /// The fractional-index key ordering siblings.
    public var position: String
    /// The index among live siblings (computed).
    public var sortOrder: Int
    public var tags: [String]
    public var notes: String?
    /// Creation time (ms).
    public var dateAdded: Int64
    /// Last change (ms).
    public var dateModified: Int64
    /// The record version: the profile sequence of its last change.
    public var syncVersion: Int64
    public var isDeleted: Bool
    public var deletedAt: Int64?
    /// Set on a create that matched an existing bookmark instead of making a copy.
    public var deduplicated: Bool?
    /// Children, in order, in `?format=tree` answers.
    public var children: [Bookmark]?

    public init(
        id: String, parentId: String?, title: String, url: String?, favicon: String?, isFolder: Bool, position: String,
        sortOrder: Int, tags: [String], notes: String?, dateAdded: Int64, dateModified: Int64, syncVersion: Int64,
        isDeleted: Bool, deletedAt: Int64?, deduplicated: Bool? = nil, children: [Bookmark]? = nil
    ) {
        self.id = id
        self.parentId = parentId
        self.title = title
        self.url = url
        self.favicon = favicon
        self.isFolder = isFolder
        self.position = position
        self.sortOrder = sortOrder
        self.tags = tags
        self.notes = notes
        self.dateAdded = dateAdded
        self.dateModified = dateModified
        self.syncVersion = syncVersion
        self.isDeleted = isDeleted
        self.deletedAt = deletedAt
        self.deduplicated = deduplicated
        self.children = children
    }

    enum CodingKeys: String, CodingKey {
        case id, parentId, title, url, favicon, isFolder, position, sortOrder, tags, notes, dateAdded, dateModified, syncVersion, isDeleted,
            deletedAt, deduplicated, children
    }

    /// Encodes every seed 000 field, with explicit `null`s (`parentId`, `url`, `favicon`,
    /// `deletedAt`) as the seed's types show them.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.id, forKey: .id)
        try container.encode(self.parentId, forKey: .parentId)
        try container.encode(self.title, forKey: .title)
        try container.encode(self.url, forKey: .url)
        try container.encode(self.favicon, forKey: .favicon)
        try container.encode(self.isFolder, forKey: .isFolder)
        try container.encode(self.position, forKey: .position)
        try container.encode(self.sortOrder, forKey: .sortOrder)
        try container.encode(self.tags, forKey: .tags)
        try container.encode(self.notes, forKey: .notes)
        try container.encode(self.dateAdded, forKey: .dateAdded)
        try container.encode(self.dateModified, forKey: .dateModified)
        try container.encode(self.syncVersion, forKey: .syncVersion)
        try container.encode(self.isDeleted, forKey: .isDeleted)
        try container.encode(self.deletedAt, forKey: .deletedAt)
        try container.encodeIfPresent(self.deduplicated, forKey: .deduplicated)
        try container.encodeIfPresent(self.children, forKey: .children)
    }

    /// The same fields as `encode(to:)`, as a `JSONValue` (built directly, without an encoder).
    public var jsonValue: JSONValue {
        func optional(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        var object: [String: JSONValue] = [
            "id": .string(self.id), "parentId": optional(self.parentId), "title": .string(self.title), "url": optional(self.url),
            "favicon": optional(self.favicon), "isFolder": .bool(self.isFolder), "position": .string(self.position),
            "sortOrder": .number(Double(self.sortOrder)), "tags": .array(self.tags.map(JSONValue.string)), "notes": optional(self.notes),
            "dateAdded": .number(Double(self.dateAdded)), "dateModified": .number(Double(self.dateModified)),
            "syncVersion": .number(Double(self.syncVersion)), "isDeleted": .bool(self.isDeleted),
            "deletedAt": self.deletedAt.map { .number(Double($0)) } ?? .null,
        ]
        if let deduplicated = self.deduplicated { object["deduplicated"] = .bool(deduplicated) }
        if let children = self.children { object["children"] = .array(children.map(\.jsonValue)) }
        return .object(object)
    }

    /// The ids of the four canonical roots every profile has.
    public static let rootIds: [String] = ["toolbar", "menu", "other", "mobile"]

    /// The default titles of the roots.
    public static let rootTitles: [String: String] = [
        "toolbar": "Bookmarks Toolbar", "menu": "Bookmarks Menu", "other": "Other Bookmarks", "mobile": "Mobile Bookmarks",
    ]

    /// Whether `id` is one of the canonical roots.
    public static func isRoot(_ id: String) -> Bool { rootIds.contains(id) }
}
