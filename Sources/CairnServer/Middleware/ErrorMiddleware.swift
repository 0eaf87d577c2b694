import CairnCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The one place where errors become HTTP responses: every error, ours or the framework's,
/// leaves as `{"error": {"code", "message", "details"}}` with the status of its code. Unknown
/// errors are logged with the request id and answered with a bare `INTERNAL_ERROR`; no SQL,
/// stack trace or driver text reaches the client.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let cairnError = Self.cairnError(for: error, context: context)
            return Self.response(for: cairnError)
        }
    }

    static func cairnError(for error: any Error, context: Context) -> CairnError {
        switch error {
        case let error as CairnError:
            return error
        case is NIOTooManyBytesError:
            return CairnError(.payloadTooLarge, "Request body is too large")
        case let error as HTTPError:
            switch error.status {
            case .notFound: return CairnError(.notFound, "No such route")
            case .methodNotAllowed: return CairnError(.methodNotAllowed, "Method not allowed")
            case .contentTooLarge: return CairnError(.payloadTooLarge, "Request body is too large")
            case .badRequest: return CairnError(.validation, error.body ?? "Malformed request")
            case .unauthorized: return CairnError.unauthorized
            case .unsupportedMediaType: return CairnError(.unsupportedMediaType, "Expected application/json")
            default:
                return error.status.code < 500
                    ? CairnError(.validation, error.body ?? "Bad request") : CairnError(.internalError, "Internal server error")
            }
        case is DecodingError:
            return CairnError(.validation, Self.describe(error as? DecodingError))
        default:
            context.logger.error("Unhandled error", metadata: ["error.type": "\(String(reflecting: type(of: error)))"])
            return CairnError(.internalError, "Internal server error")
        }
    }

    static func describe(_ error: DecodingError?) -> String {
        switch error {
        case .keyNotFound(let key, _): return "Missing field '\(key.stringValue)'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "Wrong JSON type" : "Wrong type for field '\(path)'"
        case .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "Malformed JSON" : "Invalid value for field '\(path)'"
        default: return "Malformed JSON"
        }
    }

    static func response(for error: CairnError) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        if let retryAfter = error.retryAfter {
            headers[.retryAfter] = String(retryAfter)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = (try? encoder.encode(ErrorEnvelope(error))) ?? Data(#"{"error":{"code":"INTERNAL_ERROR","message":"Internal server error"}}"#.utf8)
        return Response(status: error.code.httpStatus, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension CairnError.Code {
    /// The HTTP status of each code: the single mapping of the project.
    var httpStatus: HTTPResponse.Status {
        switch self {
        case .validation: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden, .registrationClosed: .forbidden
        case .notFound: .notFound
        case .methodNotAllowed: .methodNotAllowed
        case .conflict: .preconditionFailed
        case .alreadyExists, .cycle, .idempotencyMismatch: .conflict
        case .rateLimited: .tooManyRequests
        case .payloadTooLarge: .contentTooLarge
        case .headersTooLarge: .requestHeaderFieldsTooLarge
        case .resyncRequired: .gone
        case .syncFailed, .internalError: .internalServerError
        case .unsupportedMediaType: .unsupportedMediaType
        case .upgradeRequired: .upgradeRequired
        case .unavailable: .serviceUnavailable
        }
    }
}
