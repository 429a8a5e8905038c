import ZMQ
