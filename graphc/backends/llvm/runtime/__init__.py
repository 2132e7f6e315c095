"""What builds, loads and runs native code: the host target (target), IR to object code
(objgen, also run by path in compile workers: it imports llvmlite alone), compile workers
(parallel), cutting a module into parts (partition), the object code of a variant
(objects), the worker threads (threads), the disk cache and its keys (cache, key), what a
cached variant needs to run (layout) and the native call itself (native)."""
