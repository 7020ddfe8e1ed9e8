"""Small x86 kernel images built byte by byte, for tests that feed mote's
loaders good and broken files (the fuzz seeds, the bad-input table)."""
import struct


def elf64(segments, entry, notes=b"", machine=62):
    """segments: (paddr, data, memsz); a PT_NOTE with `notes` if given."""
    phnum = len(segments) + (1 if notes else 0)
    off = 64 + 56 * phnum
    ph = b""
    body = b""
    for paddr, data, memsz in segments:
        ph += struct.pack("<IIQQQQQQ", 1, 7, off + len(body), paddr, paddr, len(data), memsz, 0x1000)
        body += data
    if notes:
        ph += struct.pack("<IIQQQQQQ", 4, 4, off + len(body), 0, 0, len(notes), len(notes), 4)
        body += notes
    eh = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8 + struct.pack(
        "<HHIQQQIHHHHHH", 2, machine, 1, entry, 64, 0, 0, 64, 56, phnum, 0, 0, 0)
    return eh + ph + body


def elf32(segments, entry, prefix=b""):
    phnum = len(segments)
    off = 52 + 32 * phnum
    body = prefix
    ph = b""
    for paddr, data, memsz in segments:
        ph += struct.pack("<IIIIIIII", 1, off + len(body), paddr, paddr, len(data), memsz, 7, 0x1000)
        body += data
    eh = b"\x7fELF" + bytes([1, 1, 1, 0]) + b"\0" * 8 + struct.pack(
        "<HHIIIIIHHHHHH", 2, 3, 1, entry, 52, 0, 0, 52, 32, phnum, 0, 0, 0)
    return eh + ph + body


def note(name, ntype, desc):
    n = name.encode() + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)
    return struct.pack("<III", len(n), len(desc), ntype) + pad(n) + pad(desc)


def bzimage(setup_sects=4, version=0x020f, loadflags=1, xloadflags=3, kernel=b"\x90" * 4096,
            cmdline_size=2047, init_size=0x800000, pref=0x1000000):
    """A bzImage: setup sectors with a setup header (boot.rst offsets), then
    `kernel` as the protected-mode part."""
    img = bytearray(b"\xff" * ((setup_sects + 1) * 512))
    img[0x1f1:0x290] = b"\0" * (0x290 - 0x1f1)

    def put(off, fmt, v):
        struct.pack_into(fmt, img, off, v)

    put(0x1f1, "<B", setup_sects)
    put(0x1fe, "<H", 0xaa55)
    put(0x200, "<B", 0xeb)
    put(0x201, "<B", 0x6a)
    put(0x202, "<I", 0x53726448)
    put(0x206, "<H", version)
    put(0x211, "<B", loadflags)
    put(0x214, "<I", 0x100000)
    put(0x22c, "<I", 0x7fffffff)
    put(0x230, "<I", 0x200000)
    put(0x234, "<B", 1)
    put(0x236, "<H", xloadflags)
    put(0x238, "<I", cmdline_size)
    put(0x258, "<Q", pref)
    put(0x260, "<I", init_size)
    return bytes(img) + kernel
