import CairnCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension Request {
    /// Reads the body (never past `context.maxUploadSize`) and decodes it: one pass of the direct
    /// reader, which also refuses nesting deeper than `maxDepth` and the escape `\u0000` (a NUL
    /// character once decoded; see ``JSONShape/containsEscapedNUL(_:)``), then the type is decoded
    /// from the parsed value. The body must be JSON whatever the `Content-Type` says (so that
    /// `curl -d` works); credentials travel in headers, never cookies, so a cross-site form post
    /// carries no authority. Every failure is a `CairnError` with a clear code.
    func decodeJSON<T: Decodable>(as type: T.Type, context: CairnRequestContext, maxDepth: Int) async throws -> T {
        var body = self
        let buffer: ByteBuffer
        do {
            buffer = try await body.collectBody(upTo: context.maxUploadSize)
        } catch is NIOTooManyBytesError {
            throw CairnError(.payloadTooLarge, "Request body exceeds \(context.maxUploadSize) bytes")
        }
        guard buffer.readableBytes > 0 else { throw CairnError(.validation, "A JSON body is required") }
        do {
            // The two checks used to be scans of their own over the raw bytes before the parse: a
            // push's body was read three times (docs/benchmarks.md, session 18).
            let value = try buffer.withUnsafeReadableBytes { raw in
                try raw.withMemoryRebound(to: UInt8.self) { try JSONValue.parse(bytes: $0, maxDepth: maxDepth, refusingNUL: true) }
            }
            return try JSONValueDecoder().decode(T.self, from: value)
        } catch let error as JSONValue.ParseError {
            switch error.kind {
            case .tooDeep: throw CairnError(.validation, "JSON nesting deeper than \(maxDepth) levels")
            case .nul: throw CairnError(.validation, JSONShape.nulMessage)
            case .malformed: throw CairnError(.validation, "Malformed JSON")
            }
        } catch let error as DecodingError {
            throw CairnError(.validation, ErrorMiddleware<CairnRequestContext>.describe(error))
        } catch let error as CairnError {
            throw error
        } catch {
            throw CairnError(.validation, "Malformed JSON")
        }
    }
}

/// Encodes API answers: compact JSON, `application/json; charset=utf-8`.
enum JSONResponse {
    static func make<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:]) throws -> Response {
        var headers = extra
        headers[.contentType] = "application/json; charset=utf-8"
        // Pull pages write their bytes directly; other answers that build their own JSON (pushes,
        // records) skip JSONEncoder.
        if let writable = value as? any JSONBytesWritable {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(64 * 1024)
            writable.writeJSON(to: &bytes)
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        if let representable = value as? any JSONValueRepresentable {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(1024)
            // Keys sorted, as JSONEncoder's answers were: stable bytes for equal answers (pull
            // pages, above, are not sorted: sorting took a third of a page's time).
            representable.jsonValue.writeJSON(to: &bytes, sortedKeys: true)
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        if let json = value as? JSONValue {
            var bytes: [UInt8] = []
            json.writeJSON(to: &bytes, sortedKeys: true)
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// An answer whose JSON text is already written.
    static func make(json bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func noContent() -> Response {
        Response(status: .noContent)
    }
}
