import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The server's secrets: the JWT signing key, the password pepper and the refresh-token key.
///
/// Generated on first start into `<data-dir>/secrets.json` with mode 0600 (created exclusively,
/// so two processes starting at once cannot both write one), and read back on every start.
public struct ServerSecrets: Codable, Sendable, Equatable {
    /// HMAC-SHA256 key for access tokens (256 bits).
    public var jwtSigningKey: Data
    /// HMAC-SHA256 key applied to passwords before bcrypt (256 bits).
    public var passwordPepper: Data
    /// HMAC-SHA256 key deriving the secret half of refresh tokens (256 bits).
    public var refreshTokenKey: Data

    /// Fresh random secrets.
    public static func generate() -> ServerSecrets {
        ServerSecrets(
            jwtSigningKey: Data(Identifiers.randomBytes(32)),
            passwordPepper: Data(Identifiers.randomBytes(32)),
            refreshTokenKey: Data(Identifiers.randomBytes(32))
        )
    }

    /// Loads the secrets file in `directory`, creating it (mode 0600) when absent.
    /// - Throws: when the file exists but is unreadable, malformed, or readable by others.
    public static func loadOrCreate(in directory: URL) throws -> ServerSecrets {
        let path = directory.appendingPathComponent("secrets.json").path
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        if fd >= 0 {
            let secrets = ServerSecrets.generate()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            let bytes = try encoder.encode(secrets)
            let written = bytes.withUnsafeBytes { buffer in write(fd, buffer.baseAddress, buffer.count) }
            fsync(fd)
            close(fd)
            guard written == bytes.count else { throw SecretsError.unwritable(path) }
            return secrets
        }
        guard errno == EEXIST else { throw SecretsError.unwritable(path) }
        var info = stat()
        guard stat(path, &info) == 0 else { throw SecretsError.unreadable(path) }
        if info.st_mode & 0o077 != 0 {
            throw SecretsError.permissions(path)
        }
        guard let data = FileManager.default.contents(atPath: path),
            let secrets = try? JSONDecoder().decode(ServerSecrets.self, from: data),
            secrets.jwtSigningKey.count >= 32, secrets.passwordPepper.count >= 32, secrets.refreshTokenKey.count >= 32
        else {
            throw SecretsError.unreadable(path)
        }
        return secrets
    }
}

/// Why the secrets file could not be used.
public enum SecretsError: Error, CustomStringConvertible {
    case unwritable(String)
    case unreadable(String)
    case permissions(String)

    public var description: String {
        switch self {
        case .unwritable(let path): "cannot create secrets file \(path)"
        case .unreadable(let path): "cannot read secrets file \(path) (malformed or keys shorter than 256 bits)"
        case .permissions(let path): "secrets file \(path) is accessible by group or others; run: chmod 600 \(path)"
        }
    }
}
