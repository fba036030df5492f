import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// The HTTP/1.1 server of the API with its limits: request head size (431), the idle timeout of
/// a connection without a request under way (Hummingbird's, which also bounds how long a request
/// head may trickle in), and the read timeout of a request's body (`RequestLimitsHandler`).
public enum HTTPServer {
    public static func builder(_ limits: HTTPLimits, logger: Logger) -> HTTPServerBuilder {
        let readTimeout = TimeAmount.seconds(Int64(limits.readTimeoutSeconds))
        return .http1(
            configuration: HTTP1Channel.Configuration(
                additionalChannelHandlers: [RequestLimitsHandler(readTimeout: readTimeout, logger: logger)],
                idleTimeout: .seconds(Int64(limits.idleTimeoutSeconds)),
                httpDecoderConfiguration: .init(
                    maxHeaderFieldSize: limits.maxHeaderBytes, maxHeaderListSize: limits.maxHeaderBytes, maxHeaderFieldCount: 1000)))
    }
}

/// Per connection, after HTTP decoding: closes the connection when a request's body has not
/// fully arrived `readTimeout` after its head (a client that trickles its body holds nothing for
/// long), and answers 431 to a request head over the size limit (the decoder's own answer would
/// be a bare 400).
final class RequestLimitsHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let readTimeout: TimeAmount
    let logger: Logger
    private var deadline: Scheduled<Void>?

    init(readTimeout: TimeAmount, logger: Logger) {
        self.readTimeout = readTimeout
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            deadline?.cancel()
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let logger = logger
            let seconds = readTimeout.nanoseconds / 1_000_000_000
            deadline = context.eventLoop.scheduleTask(in: readTimeout) {
                logger.notice("closing a connection whose request body was not read in time", metadata: ["read_timeout_s": "\(seconds)"])
                loopBound.value.close(promise: nil)
            }
        case .end:
            deadline?.cancel()
            deadline = nil
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
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
