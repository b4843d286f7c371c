// Argument types and checks shared by the pybind11 bindings of the closure kernels (C++ and
// CUDA modules): C-contiguous arrays (converted on the way in when needed), and a failed check
// raised as ValueError with the message.
#pragma once
#include <pybind11/numpy.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace ck {

using f32a = pybind11::array_t<float, pybind11::array::c_style | pybind11::array::forcecast>;
using f64a = pybind11::array_t<double, pybind11::array::c_style | pybind11::array::forcecast>;
using i64a = pybind11::array_t<int64_t, pybind11::array::c_style | pybind11::array::forcecast>;
using u8a = pybind11::array_t<uint8_t, pybind11::array::c_style | pybind11::array::forcecast>;

inline void need(bool ok, const std::string& msg) {
  if (!ok) throw std::invalid_argument(msg);
}

}  // namespace ck
