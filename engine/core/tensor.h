// tensor.h — a typed, non-owning view of a contiguous row-major block of memory.
// Memory is owned by an Arena (see arena.h); a Tensor is cheap to copy and never frees.
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "core/dtype.h"
#include "core/error.h"

namespace meft {

constexpr int kMaxDims = 4;

struct Shape {
    std::array<std::int64_t, kMaxDims> d{};
    int ndim = 0;

    Shape() = default;
    Shape(std::initializer_list<std::int64_t> dims) {
        MEFT_CHECK(dims.size() <= kMaxDims, "too many dimensions");
        for (std::int64_t x : dims) d[ndim++] = x;
    }
    std::int64_t numel() const {
        std::int64_t n = 1;
        for (int i = 0; i < ndim; ++i) n *= d[i];
        return n;
    }
    std::int64_t operator[](int i) const { return d[i < 0 ? ndim + i : i]; }
    bool operator==(const Shape& o) const {
        if (ndim != o.ndim) return false;
        for (int i = 0; i < ndim; ++i)
            if (d[i] != o.d[i]) return false;
        return true;
    }
    // The same shape with the last dimension replaced, e.g. [B,T,C] -> [B,T,r].
    Shape with_last(std::int64_t n) const {
        Shape s = *this;
        s.d[ndim - 1] = n;
        return s;
    }
    std::string str() const {
        std::string s = "[";
        for (int i = 0; i < ndim; ++i) s += (i ? ", " : "") + std::to_string(d[i]);
        return s + "]";
    }
};

struct Tensor {
    DType dtype = DType::F32;
    Shape shape;
    void* data = nullptr;

    std::int64_t numel() const { return shape.numel(); }
    std::size_t bytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype); }
    std::int64_t dim(int i) const { return shape[i]; }
    explicit operator bool() const { return data != nullptr; }

    template <typename T> T* ptr() const {
        MEFT_CHECK(dtype == dtype_of<T>(), "tensor dtype mismatch");
        return static_cast<T*>(data);
    }
    std::uint8_t* ptr_u8() const {
        MEFT_CHECK(dtype == DType::U8, "tensor is not U8");
        return static_cast<std::uint8_t*>(data);
    }
    // The same memory seen with another shape of equal element count.
    Tensor view(Shape s) const {
        MEFT_CHECK(s.numel() == numel(), "view " + s.str() + " of tensor " + shape.str());
        return Tensor{dtype, s, data};
    }
    // Rows [begin, begin+count) along the first dimension.
    Tensor rows(std::int64_t begin, std::int64_t count) const {
        MEFT_CHECK(shape.ndim >= 1 && begin >= 0 && begin + count <= shape[0], "rows out of range");
        Tensor t = *this;
        t.shape.d[0] = count;
        const std::int64_t row = shape[0] ? numel() / shape[0] : 0;
        t.data = static_cast<char*>(data) + static_cast<std::size_t>(begin * row) * dtype_size(dtype);
        return t;
    }
};

}  // namespace meft
