// A small C++ program runner for etprof's tests: loads a .pte with the executorch wheel's own
// runtime libraries, runs its methods (taking turns, as an app calling two methods does) and
// writes an ETDump, as a runner on a phone would. Not ExecuTorch's executor_runner.
//
//   etdump_runner PROGRAM.pte OUT.etdp [--iters N] [--method NAME]... [--debug]
//
// --iters: runs of each method (default 5); --method: the methods to run, in turn (default: every
// method of the program); --debug: also record intermediate outputs (ETDump debug events).
// Inputs are deterministic: floats from a fixed sequence in [-1, 1), integers and bools zero.

#include <executorch/devtools/etdump/etdump_flatcc.h>
#include <executorch/extension/data_loader/file_data_loader.h>
#include <executorch/extension/memory_allocator/malloc_memory_allocator.h>
#include <executorch/runtime/executor/method.h>
#include <executorch/runtime/executor/program.h>
#include <executorch/runtime/platform/runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace rt = executorch::runtime;
using executorch::aten::ScalarType;
using executorch::aten::Tensor;
using executorch::aten::TensorImpl;

namespace {

int fail(const std::string& what) {
  std::fprintf(stderr, "etdump_runner: %s\n", what.c_str());
  return 1;
}

// Everything one loaded method needs to stay alive while it runs.
struct LoadedMethod {
  std::string name;
  std::vector<std::vector<uint8_t>> planned;  // memory-planned arenas
  std::vector<rt::Span<uint8_t>> spans;
  std::unique_ptr<rt::HierarchicalAllocator> planned_allocator;
  executorch::extension::MallocMemoryAllocator method_allocator;
  executorch::extension::MallocMemoryAllocator temp_allocator;
  std::unique_ptr<rt::MemoryManager> memory;
  std::unique_ptr<rt::Method> method;
  // input tensors: their storage, shapes and the TensorImpls pointing at them
  std::vector<std::vector<uint8_t>> input_data;
  std::vector<std::vector<TensorImpl::SizesType>> input_sizes;
  std::vector<std::vector<TensorImpl::DimOrderType>> input_dim_order;
  std::vector<std::unique_ptr<TensorImpl>> input_impls;
};

void fill(std::vector<uint8_t>& bytes, ScalarType type) {
  if (type != ScalarType::Float) {
    return;  // zeros: valid for indices, masks and flags
  }
  auto* values = reinterpret_cast<float*>(bytes.data());
  uint32_t state = 12345u;
  for (size_t i = 0; i < bytes.size() / sizeof(float); ++i) {
    state = state * 1664525u + 1013904223u;
    values[i] = static_cast<float>(state >> 8) / static_cast<float>(1u << 23) - 1.0f;
  }
}

rt::Error set_inputs(LoadedMethod& m, const rt::MethodMeta& meta) {
  for (size_t i = 0; i < meta.num_inputs(); ++i) {
    auto tag = meta.input_tag(i);
    if (!tag.ok()) {
      return tag.error();
    }
    if (tag.get() == rt::Tag::Int) {
      rt::Error err = m.method->set_input(rt::EValue(static_cast<int64_t>(0)), i);
      if (err != rt::Error::Ok) {
        return err;
      }
      continue;
    }
    if (tag.get() != rt::Tag::Tensor) {
      continue;  // None and constants need no value
    }
    auto info = meta.input_tensor_meta(i);
    if (!info.ok()) {
      return info.error();
    }
    auto sizes = info->sizes();
    auto order = info->dim_order();
    m.input_sizes.emplace_back(sizes.begin(), sizes.end());
    m.input_dim_order.emplace_back(order.begin(), order.end());
    m.input_data.emplace_back(info->nbytes(), 0);
    fill(m.input_data.back(), info->scalar_type());
    m.input_impls.push_back(std::make_unique<TensorImpl>(
        info->scalar_type(), static_cast<ssize_t>(sizes.size()), m.input_sizes.back().data(),
        m.input_data.back().data(), m.input_dim_order.back().data()));
    rt::Error err = m.method->set_input(rt::EValue(Tensor(m.input_impls.back().get())), i);
    if (err != rt::Error::Ok) {
      return err;
    }
  }
  return rt::Error::Ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    return fail("usage: etdump_runner PROGRAM.pte OUT.etdp [--iters N] [--method NAME]... [--debug]");
  }
  const char* pte_path = argv[1];
  const char* out_path = argv[2];
  int iters = 5;
  bool debug = false;
  std::vector<std::string> wanted;
  for (int a = 3; a < argc; ++a) {
    std::string arg = argv[a];
    if (arg == "--iters" && a + 1 < argc) {
      iters = std::atoi(argv[++a]);
    } else if (arg == "--method" && a + 1 < argc) {
      wanted.emplace_back(argv[++a]);
    } else if (arg == "--debug") {
      debug = true;
    } else {
      return fail("unknown argument " + arg);
    }
  }

  rt::runtime_init();
  auto loader = executorch::extension::FileDataLoader::from(pte_path);
  if (!loader.ok()) {
    return fail(std::string("cannot open ") + pte_path);
  }
  auto program = rt::Program::load(&loader.get());
  if (!program.ok()) {
    return fail(std::string(pte_path) + " is not a program this runtime loads");
  }
  if (wanted.empty()) {
    for (size_t i = 0; i < program->num_methods(); ++i) {
      wanted.emplace_back(program->get_method_name(i).get());
    }
  }

  executorch::etdump::ETDumpGen etdump;
  std::vector<uint8_t> debug_buffer;
  if (debug) {
    debug_buffer.resize(16 * 1024 * 1024);
    etdump.set_debug_buffer(rt::Span<uint8_t>(debug_buffer.data(), debug_buffer.size()));
    etdump.set_event_tracer_debug_level(rt::EventTracerDebugLogLevel::kIntermediateOutputs);
  }

  std::vector<std::unique_ptr<LoadedMethod>> methods;
  for (const std::string& name : wanted) {
    auto meta = program->method_meta(name.c_str());
    if (!meta.ok()) {
      return fail("the program has no method " + name);
    }
    auto m = std::make_unique<LoadedMethod>();
    m->name = name;
    for (size_t i = 0; i < meta->num_memory_planned_buffers(); ++i) {
      m->planned.emplace_back(static_cast<size_t>(meta->memory_planned_buffer_size(i).get()));
    }
    for (auto& arena : m->planned) {
      m->spans.emplace_back(arena.data(), arena.size());
    }
    m->planned_allocator = std::make_unique<rt::HierarchicalAllocator>(
        rt::Span<rt::Span<uint8_t>>(m->spans.data(), m->spans.size()));
    m->memory = std::make_unique<rt::MemoryManager>(
        &m->method_allocator, m->planned_allocator.get(), &m->temp_allocator);
    auto method = program->load_method(name.c_str(), m->memory.get(), &etdump);
    if (!method.ok()) {
      return fail("cannot load method " + name + " (error " +
                  std::to_string(static_cast<int>(method.error())) + ")");
    }
    m->method = std::make_unique<rt::Method>(std::move(method.get()));
    if (set_inputs(*m, meta.get()) != rt::Error::Ok) {
      return fail("cannot set the inputs of " + name);
    }
    methods.push_back(std::move(m));
  }

  for (int it = 0; it < iters; ++it) {
    for (auto& m : methods) {  // the methods take turns, run by run
      rt::Error err = m->method->execute();
      if (err != rt::Error::Ok) {
        return fail("executing " + m->name + " failed (error " +
                    std::to_string(static_cast<int>(err)) + ")");
      }
    }
  }

  executorch::etdump::ETDumpResult dump = etdump.get_etdump_data();
  if (dump.buf == nullptr || dump.size == 0) {
    return fail("the ETDump is empty");
  }
  FILE* out = std::fopen(out_path, "wb");
  if (out == nullptr) {
    return fail(std::string("cannot write ") + out_path);
  }
  bool written = std::fwrite(dump.buf, 1, dump.size, out) == dump.size;
  written = std::fclose(out) == 0 && written;
  std::free(dump.buf);
  if (!written) {
    return fail(std::string("cannot write ") + out_path);
  }
  std::printf("wrote %s (%zu bytes): %zu method(s) x %d runs%s\n", out_path, dump.size,
              methods.size(), iters, debug ? ", with intermediate outputs" : "");
  return 0;
}
