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

namespace {
struct LeafWithGrad {
  Tensor<float> w{Shape{2}}, dw;
  template <typename F>
  void visit_parameters(F&& f) { visit_parameter(f, "weight", w, dw); }
};
struct ParentWithGrad {
  LeafWithGrad a;
  template <typename F>
  void visit_parameters(F&& f) { visit_child(a, "a", f); }
};
}  // namespace

TEST_CASE("visit_parameter: a visitor of three arguments gets the gradient beside the value, one of two gets the value") {
  ParentWithGrad p;
  p.a.dw = Tensor<float>(Shape{2}, 3.0f);
  std::vector<std::string> names;
  p.visit_parameters([&](const std::string& n, Tensor<float>& value, Tensor<float>& grad) {
    names.push_back(n);
    value.fill(grad[0]);
  });
  CHECK(names == std::vector<std::string>{"a.weight"});
  CHECK(p.a.w[1] == 3.0f);
  int seen = 0;
  p.visit_parameters([&](const std::string&, auto& value) { seen += static_cast<int>(value.size()); });
  CHECK(seen == 2);
}
