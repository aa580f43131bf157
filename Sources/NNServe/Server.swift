#if Serve
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTPTypes
import Hummingbird
import LayerRegistry
import Logging
import ModelSpec
import NIOCore
import Prometheus
import ServiceLifecycle

/// `nnbuild serve`: TF Serving's REST API over models loaded whole before it starts.
public struct ServeConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port; the one bound is printed on standard output.
    public var port = 8501
    public var batching = Batcher.Options(enabled: true, maxRows: 32, timeout: .microseconds(1000),
                                         threads: ProcessInfo.processInfo.activeProcessorCount)
    public var maxBodyBytes = 32 << 20
    public var requestTimeout: Duration = .seconds(30)
    public init() {}
}

/// A JSON answer with a status.
struct Answer: Sendable {
    let status: HTTPResponse.Status
    let body: String

    static func error(_ status: HTTPResponse.Status, _ message: String) -> Answer {
        Answer(status: status, body: JSONText.error(message))
    }
}

/// The models, the metrics, and the routing of TF Serving's URLs.
public final class ModelServer: Sendable {
    let models: [String: ServedModel]
    let batchers: [String: [Int: Batcher]]
    let configuration: ServeConfiguration
    let metrics = PrometheusCollectorRegistry()
    let latency: DurationHistogram
    let inFlight: Gauge

    public init(models: [ServedModel], configuration: ServeConfiguration) {
        self.configuration = configuration
        let metrics = self.metrics
        var byName: [String: ServedModel] = [:], batchers: [String: [Int: Batcher]] = [:]
        for served in models {
            byName[served.name] = served
            for version in served.versions {
                let labels = [("model", served.name), ("version", String(version.version))]
                metrics.makeGauge(descriptor: MetricNameDescriptor(metricName: "nnbuild_model_load", unitName: "seconds",
                                                                   helpText: "Seconds spent reading and building the model version"),
                                  labels: labels).set(version.loadSeconds)
                let sizes = metrics.makeValueHistogram(
                    descriptor: MetricNameDescriptor(metricName: "nnbuild_batch_size", unitName: "rows",
                                                     helpText: "Rows per predict call, after dynamic batching"),
                    labels: labels, buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024])
                batchers[served.name, default: [:]][version.version] = Batcher(model: version.model, options: configuration.batching) { rows in
                    sizes.record(Double(rows))
                }
            }
        }
        self.models = byName
        self.batchers = batchers
        inFlight = metrics.makeGauge(descriptor: MetricNameDescriptor(metricName: "nnbuild_predict_requests_in_flight", unitName: "",
                                                                      helpText: "Predict requests received and not yet answered"))
        latency = metrics.makeDurationHistogram(
            descriptor: MetricNameDescriptor(metricName: "nnbuild_request_duration", unitName: "seconds", helpText: "Time from request to answer"),
            buckets: [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                      .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5)])
    }

    /// Counts and times one answered request.
    func record(_ answer: Answer, since start: ContinuousClock.Instant) -> Answer {
        latency.record(ContinuousClock.now - start)
        counters.counter(answer.status.code) {
            metrics.makeCounter(descriptor: MetricNameDescriptor(metricName: "nnbuild_requests", unitName: "total",
                                                                 helpText: "Requests answered, by HTTP status"),
                                labels: [("code", String(answer.status.code))])
        }.increment()
        return answer
    }

    /// `nnbuild_requests_total` by status, made once per status rather than looked up in the
    /// registry (labels built, hashed, compared) on every request.
    final class StatusCounters: @unchecked Sendable {
        private let lock = Lock()
        private var byCode: [Int: Counter] = [:]
        func counter(_ code: Int, make: () -> Counter) -> Counter {
            lock.lock()
            defer { lock.unlock() }
            if let counter = byCode[code] { return counter }
            let counter = make()
            byCode[code] = counter
            return counter
        }
    }
    let counters = StatusCounters()

    /// `/v1/models/NAME[/versions/N][/metadata]` and `...:predict`, parsed. Nil when the path
    /// is none of TF Serving's.
    struct Route {
        enum Action { case status, metadata, predict }
        let name: String
        let version: Int?
        let versionText: String?
        let action: Action
    }

    static func route(_ path: String) -> Route? {
        var parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 4, parts[0] == "", parts[1] == "v1", parts[2] == "models" else { return nil }
        parts.removeFirst(3)
        var action = Route.Action.status
        if parts.last == "metadata" {
            action = .metadata
            parts.removeLast()
        } else if let last = parts.last, last.hasSuffix(":predict") {
            action = .predict
            parts[parts.count - 1] = String(last.dropLast(":predict".count))
        }
        switch parts.count {
        case 1: return Route(name: parts[0], version: nil, versionText: nil, action: action)
        case 3 where parts[1] == "versions": return Route(name: parts[0], version: Int(parts[2]), versionText: parts[2], action: action)
        default: return nil
        }
    }

    /// The version a route names, or the 404 answer TF Serving gives.
    func find(_ route: Route) -> Result<(ServedModel, ServedVersion), AnswerError> {
        guard let served = models[route.name] else {
            return .failure(AnswerError(.error(.notFound, "Servable not found for request: Latest(\(route.name))")))
        }
        if let text = route.versionText {
            guard let number = route.version, let version = served.version(number) else {
                return .failure(AnswerError(.error(.notFound, "Servable not found for request: Specific(\(route.name), \(text))")))
            }
            return .success((served, version))
        }
        guard let latest = served.latest else {
            return .failure(AnswerError(.error(.notFound, "Servable not found for request: Latest(\(route.name))")))
        }
        return .success((served, latest))
    }

    struct AnswerError: Error { let answer: Answer; init(_ answer: Answer) { self.answer = answer } }

    func get(_ path: String) -> Answer {
        switch path {
        case "/healthz": return Answer(status: .ok, body: JSONText.object([("status", JSONText.string("ok"))]))
        default: break
        }
        guard let route = Self.route(path), route.action != .predict else {
            return .error(.notFound, "no such endpoint: GET \(path)")
        }
        switch find(route) {
        case let .failure(error): return error.answer
        case let .success((served, version)):
            if route.action == .metadata { return Answer(status: .ok, body: RestAPI.metadataResponse(name: served.name, version: version)) }
            return Answer(status: .ok, body: RestAPI.statusResponse(route.version == nil ? served.versions : [version]))
        }
    }

    /// What a `POST` path reaches: the model version and its batcher, or the answer to give.
    struct Target {
        let version: ServedVersion
        let batcher: Batcher
    }

    func target(_ path: String) -> Result<Target, AnswerError> {
        guard let route = Self.route(path), route.action == .predict else {
            return .failure(AnswerError(.error(.notFound, "no such endpoint: POST \(path)")))
        }
        return find(route).flatMap { found in
            let (served, version) = found
            guard let batcher = batchers[served.name]?[version.version] else {
                return .failure(AnswerError(.error(.notFound, "Servable not found for request: Specific(\(served.name), \(version.version))")))
            }
            return .success(Target(version: version, batcher: batcher))
        }
    }

    func predict(_ path: String, body: [UInt8]) async -> Answer {
        switch target(path) {
        case let .failure(error): return error.answer
        case let .success(target): return await predict(target, arrival: target.batcher.arrive(), body: body)
        }
    }

    /// Parses `body` and runs it through `arrival`'s batcher (giving the arrival up when the
    /// body is bad).
    func predict(_ target: Target, arrival: Batcher.Arrival, body: [UInt8]) async -> Answer {
        defer { arrival.leave() }
        let version = target.version
        let request: RestAPI.PredictRequest
        do {
            request = try RestAPI.parsePredict(body, model: version.model)
        } catch {
            return .error(.badRequest, error.nnProblems.joined(separator: "\n"))
        }
        do {
            let outputs = try await arrival.predict(request.batches, deadline: configuration.requestTimeout)
            return Answer(status: .ok, body: RestAPI.predictResponse(outputs, format: request.format, model: version.model))
        } catch let error as DeadlineExceeded {
            return .error(.gatewayTimeout, "Deadline exceeded: the prediction took longer than --request-timeout (\(error.seconds) s)")
        } catch let error where error is NNError || error is NNErrors {
            return .error(.badRequest, error.nnProblems.joined(separator: "\n"))
        } catch {
            return .error(.internalServerError, "\(error)")
        }
    }

    static func response(_ answer: Answer, contentType: String = "application/json") -> Response {
        Response(status: answer.status, headers: [.contentType: contentType],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: answer.body + "\n")))
    }

    /// Serves until SIGTERM or SIGINT, then stops accepting, lets requests in flight finish,
    /// and returns. `onListening` receives the bound port.
    public func run(onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let router = Router()
        let server = self
        let maxBody = configuration.maxBodyBytes
        router.get("/metrics") { _, _ -> Response in
            let text = server.metrics.emitToString()
            return ModelServer.response(server.record(Answer(status: .ok, body: text), since: .now), contentType: "text/plain; version=0.0.4")
        }
        router.get("**") { request, _ -> Response in
            let start = ContinuousClock.now
            return ModelServer.response(server.record(server.get(request.uri.path), since: start))
        }
        router.post("**") { request, _ -> Response in
            let start = ContinuousClock.now
            server.inFlight.increment(by: 1)
            defer { server.inFlight.decrement(by: 1) }
            if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maxBody {
                return ModelServer.response(server.record(.error(.contentTooLarge, Self.tooLarge(maxBody)), since: start))
            }
            // Known before the body is read, so that a batch forming for the same model can
            // wait for this request (see Batcher).
            let target = server.target(request.uri.path)
            let arrival = try? target.get().batcher.arrive()
            defer { arrival?.leave() }
            let buffer: ByteBuffer
            do {
                buffer = try await request.body.collect(upTo: maxBody)
            } catch is NIOTooManyBytesError {
                return ModelServer.response(server.record(.error(.contentTooLarge, Self.tooLarge(maxBody)), since: start))
            }
            let answer: Answer
            switch (target, arrival) {
            case let (.success(target), arrival?): answer = await server.predict(target, arrival: arrival, body: Array(buffer.readableBytesView))
            case let (.failure(error), _): answer = error.answer
            case (.success, nil): answer = await server.predict(request.uri.path, body: Array(buffer.readableBytesView))
            }
            return ModelServer.response(server.record(answer, since: start))
        }
        var logger = Logger(label: "nnbuild.serve")
        logger.logLevel = .warning
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "nnbuild"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
        try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
    }

    static func tooLarge(_ limit: Int) -> String {
        "the request body is larger than --max-body-bytes (\(limit) bytes)"
    }
}
#endif
