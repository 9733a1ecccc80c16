//! Sans-IO RTMP: handshake, chunk stream codec and the command flows of server and client.
