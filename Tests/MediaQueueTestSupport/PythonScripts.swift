/// Pieces of the Python helper processes that tests start.
public enum PythonScripts {
    /// Ends the script's process with the test process that started it, even when a test fails
    /// before stopping it (needs `os`, `threading` and `time` imported).
    public static let endWithParent = """
        parent = os.getppid()

        def watch_parent():
            while os.getppid() == parent:
                time.sleep(1)
            os._exit(0)

        threading.Thread(target=watch_parent, daemon=True).start()
        """

    /// `shut_down(*sockets)`: ends both directions of each socket, ignoring ones already closed,
    /// so a forwarder passes one side's end on to the other (needs `socket` imported).
    public static let shutDown = """
        def shut_down(*sockets):
            for sock in sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        """
}
