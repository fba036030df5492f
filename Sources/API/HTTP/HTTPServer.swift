import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import Storage

/// The HTTP/1.1 server of the API with its limits: request head size (431), the idle timeout of
/// a connection without a request under way (Hummingbird's, which also bounds how long a request
/// head may trickle in), and the read timeout of a request's body (`RequestLimitsHandler`).
///
/// Each connection's task runs on the connection's own event loop (`LoopBoundHTTP1Channel`):
/// its handlers run where the request's bytes arrive and where the response is written.
public enum HTTPServer {
    public static func builder(_ limits: HTTPLimits, logger: Logger) -> HTTPServerBuilder {
        let readTimeout = TimeAmount.seconds(Int64(limits.readTimeoutSeconds))
        let configuration = HTTP1Channel.Configuration(
            additionalChannelHandlers: [RequestLimitsHandler(readTimeout: readTimeout, logger: logger)],
            idleTimeout: .seconds(Int64(limits.idleTimeoutSeconds)),
            httpDecoderConfiguration: .init(
                maxHeaderFieldSize: limits.maxHeaderBytes, maxHeaderListSize: limits.maxHeaderBytes, maxHeaderFieldCount: 1000))
        return HTTPServerBuilder { responder in
            LoopBoundHTTP1Channel(http1: HTTP1Channel(responder: responder, configuration: configuration))
        }
    }
}

/// Hummingbird's HTTP/1.1 channel, with each connection's task preferring the connection's event
/// loop as its executor (SE-0417).
///
/// Hummingbird runs a connection's task on Swift's global pool: a request's parts are read on
/// the event loop and handed to a pool thread, whose response goes back to the loop to be
/// written, so an enqueue on SQLite changed threads four times (loop, pool, writer, pool, loop: 4.8
/// context switches per request under `wrk -c 4`). Here the handler runs on the loop itself:
/// loop, writer, loop (2.5 switches), and the api's CPU per request fell by 6–10 %
/// (docs/benchmarks.md, twenty-third session). A handler's `await` on other work (SQLite's
/// writer, PostgresNIO) resumes on the loop again.
///
/// What this asks of a handler: not to block. CPU work is fine (the loops are
/// `TOWER_HTTP_THREADS`, one fewer than the cores by default); file I/O is not, since a slow
/// disk would hold up every connection of that loop: routes that read or write files say so
/// (`Route.blocking`) and run on `BlockingExecutor`.
struct LoopBoundHTTP1Channel: ServerChildChannel {
    let http1: HTTP1Channel

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1Channel.Value> {
        http1.setup(channel: channel, logger: logger)
    }

    func handle(value: HTTP1Channel.Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(value.channel.eventLoop)) {
            await http1.handle(value: value, logger: logger)
        }
    }
}

/// Per connection, after HTTP decoding: closes the connection when a request's body has not
/// fully arrived `readTimeout` after its head (a client that trickles its body holds nothing for
/// long), and answers 431 to a request head over the size limit (the decoder's own answer would
/// be a bare 400).
///
/// One timer a connection, not one a request: a head notes its deadline and arms the timer only
/// when none is armed; when the timer fires it closes the connection if the request under way is
/// past its deadline, re-arms itself for that request's later deadline otherwise, and stops
/// between requests. A connection closes at the same moment as with a timer scheduled at each
/// head and cancelled at each end, and a keep-alive connection's requests no longer schedule and
/// cancel a task each (about 9 K instructions a request, 1 % of an enqueue's: docs/benchmarks.md,
/// fifty-seventh session).
final class RequestLimitsHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let readTimeout: TimeAmount
    let logger: Logger
    /// When the body of the request under way must have arrived; nil between requests.
    private var bodyDeadline: NIODeadline?
    private var timer: Scheduled<Void>?

    init(readTimeout: TimeAmount, logger: Logger) {
        self.readTimeout = readTimeout
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            let deadline = NIODeadline.now() + readTimeout
            bodyDeadline = deadline
            if timer == nil { arm(at: deadline, context: context) }
        case .end:
            bodyDeadline = nil
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    private func arm(at deadline: NIODeadline, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            loopBound.value.handler.timerFired(context: loopBound.value.context)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        guard let deadline = bodyDeadline else { return }  // between requests: the next head arms it
        guard deadline <= .now() else {
            arm(at: deadline, context: context)
            return
        }
        let seconds = readTimeout.nanoseconds / 1_000_000_000
        logger.notice("closing a connection whose request body was not read in time", metadata: ["read_timeout_s": "\(seconds)"])
        context.close(promise: nil)
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
        bodyDeadline = nil
    }

    func handlerRemoved(context: ChannelHandlerContext) { disarm() }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError, parserError == .headerOverflow else {
            context.fireErrorCaught(error)
            return
        }
        let body = ByteBuffer(string: #"{"detail":"Request header fields too large"}"#)
        let head = HTTPResponse(
            status: .init(code: 431),
            headerFields: [.contentType: "application/json", .contentLength: String(body.readableBytes), .connection: "close"])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in loopBound.value.close(promise: nil) }
    }
}
