#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A transport-agnostic error with a stable machine-readable code.
///
/// Every failure a client can see is a `CairnError`. The server maps the ``Code`` to an HTTP
/// status in exactly one place; the body is always
/// `{"error": {"code", "message", "details"}}`.
///
/// ```swift
/// throw CairnError(.validation, "title is too long", field: "title")
/// ```
public struct CairnError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The stable error codes of the Cairn API.
    public enum Code: String, Sendable, Codable, CaseIterable {
        case validation = "VALIDATION_ERROR"
        case unauthorized = "UNAUTHORIZED"
        case forbidden = "FORBIDDEN"
        case notFound = "NOT_FOUND"
        case methodNotAllowed = "METHOD_NOT_ALLOWED"
        case conflict = "CONFLICT_DETECTED"
        case alreadyExists = "ALREADY_EXISTS"
        case cycle = "CYCLE"
        case rateLimited = "RATE_LIMITED"
        case payloadTooLarge = "PAYLOAD_TOO_LARGE"
        case headersTooLarge = "HEADERS_TOO_LARGE"
        case resyncRequired = "RESYNC_REQUIRED"
        case idempotencyMismatch = "IDEMPOTENCY_MISMATCH"
        case syncFailed = "SYNC_FAILED"
        case registrationClosed = "REGISTRATION_CLOSED"
        case unsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
        case upgradeRequired = "UPGRADE_REQUIRED"
        case internalError = "INTERNAL_ERROR"
        case unavailable = "SERVICE_UNAVAILABLE"
    }

    /// The machine-readable code.
    public var code: Code
    /// A human-readable message. Never contains SQL, stack traces or another user's data.
    public var message: String
    /// The offending field, when one is known.
    public var field: String?
    /// Extra structured details (for example the current record on a conflict).
    public var details: JSONValue?
    /// Seconds the client should wait before retrying (rate limits).
    public var retryAfter: Int?

    /// Creates an error.
    /// - Parameters:
    ///   - code: the stable code.
    ///   - message: a human-readable message.
    ///   - field: the offending field, if any.
    ///   - details: extra structured details.
    public init(_ code: Code, _ message: String, field: String? = nil, details: JSONValue? = nil, retryAfter: Int? = nil) {
        self.code = code
        self.message = message
        self.field = field
        self.details = details
        self.retryAfter = retryAfter
    }

    public var description: String { "\(self.code.rawValue): \(self.message)" }

    /// The single body used for every authentication failure, so that a client learns nothing
    /// about why a credential was refused.
    public static var unauthorized: CairnError { CairnError(.unauthorized, "Authentication required") }

    /// A missing resource, or one that belongs to someone else: both answer the same.
    public static func notFound(_ what: String = "Resource") -> CairnError { CairnError(.notFound, "\(what) not found") }
}

/// The JSON body of every error response: `{"error": {"code", "message", "details"}}`.
public struct ErrorEnvelope: Codable, Sendable, Equatable {
    /// The error payload.
    public struct Body: Codable, Sendable, Equatable {
        /// The stable error code, for example `VALIDATION_ERROR`.
        public var code: String
        /// A human-readable message.
        public var message: String
        /// Structured details: `field` for validation errors, `current` for conflicts.
        public var details: JSONValue?
    }

    /// The error payload.
    public var error: Body

    /// Builds the envelope for an error.
    public init(_ error: CairnError) {
        var details = error.details
        if let field = error.field {
            var object = details?.objectValue ?? [:]
            object["field"] = .string(field)
            details = .object(object)
        }
        self.error = Body(code: error.code.rawValue, message: error.message, details: details)
    }
}
