// visit_child: a member block's parameters appear under "<member>.<name>".
#include "eigenformer/core/visit.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "eigenformer/core/tensor.hpp"

using namespace eigenformer;

namespace {
struct Leaf {
  Tensor<float> w{Shape{2}};
  template <typename F>
  void visit_parameters(F&& f) { f(std::string("weight"), w); }
};
struct Parent {
  Leaf a, b;
  template <typename F>
  void visit_parameters(F&& f) {
    visit_child(a, "a", f);
    visit_child(b, "inner.b", f);
  }
};
}  // namespace

TEST_CASE("visit_child: prefixes member names with a dot and reaches the member's tensors") {
  Parent p;
  std::vector<std::string> names;
  p.visit_parameters([&](const std::string& n, Tensor<float>& t) {
    names.push_back(n);
    t.fill(1.0f);
  });
  CHECK(names == std::vector<std::string>{"a.weight", "inner.b.weight"});
  CHECK(p.b.w[1] == 1.0f);
}
