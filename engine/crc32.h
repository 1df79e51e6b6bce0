// Crc32: the CRC-32 (IEEE 802.3, as in zip and zlib) of a byte range.
// Pure function; thread-safe.
#ifndef RWKV_ENGINE_CRC32_H_
#define RWKV_ENGINE_CRC32_H_

#include <cstddef>
#include <cstdint>

namespace rwkv::engine {

// CRC-32 of data[0, size), continuing from `crc` (the result of a previous
// call for the bytes before; 0 to start).
uint32_t Crc32(const void* data, size_t size, uint32_t crc = 0);

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_CRC32_H_
