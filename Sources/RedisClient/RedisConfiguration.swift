import Foundation

/// Where and how to connect: `redis://[[user]:password@]host:port[/db]`.
public struct RedisConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var database: Int
    public var username: String?
    public var password: String?
    public var connectTimeout: Duration
    public var commandTimeout: Duration
    /// Reconnect backoff: first delay, doubled per failure up to `maxBackoff`.
    public var minBackoff: Duration
    public var maxBackoff: Duration

    public init(host: String = "127.0.0.1", port: Int = 6379, database: Int = 0,
                username: String? = nil, password: String? = nil,
                connectTimeout: Duration = .seconds(2), commandTimeout: Duration = .seconds(2),
                minBackoff: Duration = .milliseconds(50), maxBackoff: Duration = .seconds(5)) {
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.minBackoff = minBackoff
        self.maxBackoff = maxBackoff
    }

    /// Parses `redis://...`; the error names the URL and what is wrong with it.
    public init(url: String) throws {
        guard let u = URLComponents(string: url), u.scheme == "redis" else {
            throw RedisError(code: .configuration, message: "\(url): expected redis://HOST:PORT[/DB]")
        }
        guard let host = u.host, !host.isEmpty else {
            throw RedisError(code: .configuration, message: "\(url): missing host")
        }
        var db = 0
        let path = u.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if !path.isEmpty {
            guard let n = Int(path), n >= 0 else {
                throw RedisError(code: .configuration, message: "\(url): database '\(path)' is not a non-negative integer")
            }
            db = n
        }
        let user = u.user.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding }
        self.init(host: host, port: u.port ?? 6379, database: db,
                  username: user, password: u.password?.removingPercentEncoding)
    }

    /// The URL without credentials, for logs.
    public var redactedURL: String { "redis://\(host):\(port)/\(database)" }
}
