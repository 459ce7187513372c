"""Caller buffers as C pointers, without copying them.

A get writes straight into the caller's memory and a put reads straight
from it: anything with the buffer protocol (bytes, bytearray, memoryview,
numpy arrays, mmap) goes through ffi.from_buffer, a CPU torch tensor (which
has no buffer protocol) through its data_ptr().  Both must be
C-contiguous: a strided view would need a copy, which this package never
makes behind the caller's back."""
from ._ffi import ffi


def _is_tensor(obj):
    return hasattr(obj, "data_ptr") and hasattr(obj, "is_contiguous") and hasattr(obj, "element_size")


def _tensor(obj, writable):
    if obj.device.type != "cpu":
        raise TypeError("kvnode: a torch tensor must be on the CPU (this one is on %s)" % obj.device)
    if not obj.is_contiguous():
        raise ValueError("kvnode: a torch tensor must be contiguous (call .contiguous() first)")
    if writable and obj.requires_grad:
        raise ValueError("kvnode: cannot write into a tensor that requires grad")
    nbytes = obj.numel() * obj.element_size()
    ptr = obj.data_ptr()
    return (ffi.cast("void *", ptr) if ptr else ffi.NULL), nbytes, obj


def writable(obj):
    """(pointer, capacity in bytes, object to keep alive) for a get's out."""
    if _is_tensor(obj):
        return _tensor(obj, True)
    try:
        p = ffi.from_buffer(obj, require_writable=True)
    except TypeError as e:
        raise TypeError("kvnode: out must be a writable, C-contiguous buffer "
                        "(bytearray, memoryview, numpy array, CPU torch tensor): %s" % e) from None
    except (ValueError, BufferError) as e:
        if "writable" in str(e):  # cffi/CPython say so for bytes and read-only views
            raise TypeError("kvnode: out must be writable (bytes are not): %s" % e) from None
        raise ValueError("kvnode: out must be C-contiguous: %s" % e) from None
    return p, len(p), p


def readable(obj):
    """(pointer, length in bytes, object to keep alive) for a put's value."""
    if _is_tensor(obj):
        return _tensor(obj, False)
    if isinstance(obj, str):
        raise TypeError("kvnode: a value is bytes-like, not str (encode it)")
    try:
        p = ffi.from_buffer(obj)
    except TypeError as e:
        raise TypeError("kvnode: a value must be a C-contiguous buffer "
                        "(bytes, bytearray, memoryview, numpy array, CPU torch tensor): %s" % e) from None
    except (ValueError, BufferError) as e:
        raise ValueError("kvnode: a value must be C-contiguous: %s" % e) from None
    return p, len(p), p


def key(k):
    """A key as bytes: str is UTF-8, bytes-like objects are taken as is."""
    if isinstance(k, bytes):
        return k
    if isinstance(k, str):
        return k.encode("utf-8")
    return bytes(memoryview(k))
