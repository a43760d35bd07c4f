package analyze

import (
	"math"
	"strings"

	"github.com/llmbatch/llmbatch/pkg/model"
)

// linear is a multinomial logistic regression over the features: one score per category (tiny,
// small, large, reasoning, in that order), the bias plus the weighted features; the softmax of the
// scores gives the categories' probabilities.
type linear struct {
	features []string // the feature names the weights were trained for, in order
	bias     [numClasses]float64
	weights  [numClasses][]float64
}

// numClasses is the number of categories the model scores: model.Tiny … model.Reasoning.
const numClasses = 4

func classOf(i int) model.Category { return model.Category(i + 1) }

// scores returns the model's score per category for a feature vector.
func (m *linear) scores(v *vector) (s [numClasses]float64) {
	for c := range numClasses {
		s[c] = m.bias[c]
		w := m.weights[c]
		for i := range min(len(w), len(v)) {
			s[c] += w[i] * v[i]
		}
	}
	return s
}

// softmax turns scores into probabilities.
func softmax(s [numClasses]float64) (p [numClasses]float64) {
	top := s[0]
	for _, x := range s[1:] {
		top = math.Max(top, x)
	}
	sum := 0.0
	for c, x := range s {
		p[c] = math.Exp(x - top)
		sum += p[c]
	}
	for c := range p {
		p[c] /= sum
	}
	return p
}

// signals names the features that most separate category c from the runner-up r: those whose
// weighted values raise c's score over r's the most, strongest first, at most three.
func (m *linear) signals(s *scan, v *vector, c, r int) string {
	var top [3]feature
	var gain [3]float64
	wc, wr := m.weights[c], m.weights[r]
	for i := range min(len(wc), len(wr), len(v)) {
		g := (wc[i] - wr[i]) * v[i]
		if g < 0.1 {
			continue
		}
		for k := range top {
			if g > gain[k] {
				copy(top[k+1:], top[k:len(top)-1])
				copy(gain[k+1:], gain[k:len(gain)-1])
				top[k], gain[k] = feature(i), g
				break
			}
		}
	}
	var b strings.Builder
	for k := range top {
		if gain[k] == 0 {
			break
		}
		if k > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.evidence(top[k]))
	}
	if b.Len() == 0 {
		return "no strong signal"
	}
	return b.String()
}
