internal import CZMQ

/// The socket patterns TaskMesh uses (see zmq_socket(3)).
public enum SocketType: Sendable, CustomStringConvertible {
    case pair, push, pull, dealer, router, req, rep, pub, sub

    var raw: Int32 {
        switch self {
        case .pair: ZMQ_PAIR
        case .push: ZMQ_PUSH
        case .pull: ZMQ_PULL
        case .dealer: ZMQ_DEALER
        case .router: ZMQ_ROUTER
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        }
    }

    public var description: String {
        switch self {
        case .pair: "PAIR"
        case .push: "PUSH"
        case .pull: "PULL"
        case .dealer: "DEALER"
        case .router: "ROUTER"
        case .req: "REQ"
        case .rep: "REP"
        case .pub: "PUB"
        case .sub: "SUB"
        }
    }
}
