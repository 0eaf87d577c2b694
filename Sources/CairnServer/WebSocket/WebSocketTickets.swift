import Foundation
import Synchronization

/// One-time, 30-second tickets for browser WebSocket clients, which cannot set an
/// `Authorization` header: `POST /api/auth/ws-ticket`, then `GET /api/sync/ws?ticket=…`.
/// In memory; a ticket works once.
final class WebSocketTickets: Sendable {
    struct Ticket {
        var identity: AuthIdentity
        var expires: Int64
    }

    let lifetime: Int64
    let clock: ServerClock
    private let tickets = Mutex<[String: Ticket]>([:])

    init(clock: ServerClock, lifetime: Int64 = 30_000) {
        self.clock = clock
        self.lifetime = lifetime
    }

    /// A new ticket for `identity`.
    func issue(for identity: AuthIdentity) -> String {
        let ticket = "wst_" + Identifiers.randomToken(bytes: 32)
        let now = self.clock.nowMilliseconds
        self.tickets.withLock { tickets in
            if tickets.count > 10_000 { tickets = tickets.filter { $0.value.expires > now } }
            tickets[ticket] = Ticket(identity: identity, expires: now + self.lifetime)
        }
        return ticket
    }

    /// The identity of a live ticket, consuming it.
    func redeem(_ ticket: String) -> AuthIdentity? {
        let now = self.clock.nowMilliseconds
        return self.tickets.withLock { tickets in
            guard let found = tickets.removeValue(forKey: ticket), found.expires > now else { return nil }
            return found.identity
        }
    }
}
